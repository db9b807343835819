import test from "ava";
import { DUMMY_HASH, hashPassword, verifyPassword } from "./passwords.js";

test("a hash verifies its own password and no other", async (t) => {
  const stored = await hashPassword("correct horse battery");
  t.true(await verifyPassword("correct horse battery", stored));
  t.false(await verifyPassword("correct horse batterY", stored));
  t.false(await verifyPassword("", stored));
});

test("the stored form is scrypt with its parameters, never the password", async (t) => {
  const stored = await hashPassword("hunter22hunter22");
  t.regex(stored, /^scrypt\$16384\$8\$1\$[\w-]{22}\$[\w-]{43}$/);
  t.false(stored.includes("hunter22"));
});

test("two hashes of one password differ (fresh salt), and both verify", async (t) => {
  const [a, b] = await Promise.all([hashPassword("same password"), hashPassword("same password")]);
  t.not(a, b);
  t.not(a.split("$")[4], b.split("$")[4]);
  t.true(await verifyPassword("same password", a));
  t.true(await verifyPassword("same password", b));
});

test("compatible Unicode spellings verify alike (NFKC)", async (t) => {
  const stored = await hashPassword("caf\u00e9-password");
  t.true(await verifyPassword("cafe\u0301-password", stored));
});

test("DUMMY_HASH is well formed but matches no ordinary password", async (t) => {
  t.regex(DUMMY_HASH, /^scrypt\$/);
  t.false(await verifyPassword("password123", DUMMY_HASH));
});

const MALFORMED = [
  "",
  "plain-text-password",
  "bcrypt$16384$8$1$c2FsdA$aGFzaA",
  "scrypt$16384$8$1$$",
  "scrypt$16384$8$1$c2FsdHNhbHRzYWx0c2E",
  "scrypt$16384$8$1$c2FsdHNhbHRzYWx0c2E$tooshort",
  "scrypt$$$$c2FsdHNhbHRzYWx0c2E$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
  "scrypt$abc$8$1$c2FsdHNhbHRzYWx0c2E$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
  "scrypt$1000$8$1$c2FsdHNhbHRzYWx0c2E$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
  "scrypt$1048576$8$1$c2FsdHNhbHRzYWx0c2E$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
];

for (const stored of MALFORMED) {
  test(`a malformed stored hash never verifies: ${JSON.stringify(stored)}`, async (t) => {
    t.false(await verifyPassword("anything at all", stored));
  });
}
