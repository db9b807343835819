import test from "ava";
import { AppError } from "./app-error.js";
import { checkName, checkPassword } from "./validation.js";

const rejects = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    return err instanceof AppError && err.kind === "invalid_argument" ? err : undefined;
  }
  return undefined;
};

for (const name of ["abc", "Alice", "a_b-c.d", "user.42", "___", "x".repeat(32), "ABC-xyz_09"]) {
  test(`name ${JSON.stringify(name)} is accepted as given`, (t) => {
    t.is(checkName(name, "username"), name);
  });
}

const BAD_NAMES: unknown[] = [
  "",
  "ab",
  "x".repeat(33),
  "has space",
  "semi;colon",
  "at@sign",
  "slash/name",
  "émile",
  "abc\n",
  "\nabc",
  " abc",
  undefined,
  null,
  123456,
];

for (const name of BAD_NAMES) {
  test(`name ${JSON.stringify(name) ?? String(name)} is rejected as invalid_argument`, (t) => {
    t.truthy(rejects(() => checkName(name, "username")));
  });
}

test("the error names what was checked", (t) => {
  t.regex(rejects(() => checkName("x", "group name"))?.message ?? "", /^group name /);
  t.regex(rejects(() => checkName("x", "username"))?.message ?? "", /^username /);
});

test("passwords of 8 and 128 characters are accepted", (t) => {
  t.is(checkPassword("12345678"), "12345678");
  t.is(checkPassword("p".repeat(128)), "p".repeat(128));
});

test("passwords of 7 or 129 characters, or not strings, are rejected", (t) => {
  for (const value of ["1234567", "p".repeat(129), "", undefined, 12345678]) {
    t.truthy(
      rejects(() => checkPassword(value)),
      JSON.stringify(value),
    );
  }
});

test("password length counts characters, not UTF-16 units", (t) => {
  const emoji = "\u{1F600}"; // two UTF-16 units
  t.truthy(
    rejects(() => checkPassword(emoji.repeat(4))),
    "4 characters, 8 units",
  );
  t.is(checkPassword(emoji.repeat(128)), emoji.repeat(128));
  t.truthy(rejects(() => checkPassword(emoji.repeat(129))));
});
