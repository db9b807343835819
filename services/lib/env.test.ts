// The environment reader alone: what each read returns, and the problem it
// notes for a bad value, as a config loader's caller would see them.
import test from "ava";
import { EnvError, EnvReader } from "./env.js";

const reader = (env: Record<string, string>) => new EnvReader(env);

test("a value is trimmed, and a blank one counts as unset", (t) => {
  const read = reader({ A: "  text  ", B: "   ", C: "" });
  t.is(read.raw("A"), "text");
  t.is(read.raw("B"), undefined);
  t.is(read.string("C", "fallback"), "fallback");
  t.is(read.string("MISSING", "fallback"), "fallback");
  t.deepEqual(read.problems, []);
});

test("int() reads whole numbers within its bounds, inclusive, and names a bad value", (t) => {
  const read = reader({ LOW: "1", HIGH: " 10 ", NEG: "-2", BELOW: "0", ABOVE: "11", FRACTION: "2.5", EXP: "1e1", WORD: "ten" });
  t.is(read.int("LOW", 5, 1, 10), 1);
  t.is(read.int("HIGH", 5, 1, 10), 10);
  t.is(read.int("NEG", 5, -3, 10), -2);
  t.is(read.int("UNSET", 5, 1, 10), 5);
  t.deepEqual(read.problems, []);
  for (const name of ["BELOW", "ABOVE", "FRACTION", "EXP", "WORD"]) t.is(read.int(name, 5, 1, 10), 5, name);
  t.deepEqual(read.problems, [
    'BELOW must be an integer from 1 to 10, got "0"',
    'ABOVE must be an integer from 1 to 10, got "11"',
    'FRACTION must be an integer from 1 to 10, got "2.5"',
    'EXP must be an integer from 1 to 10, got "1e1"',
    'WORD must be an integer from 1 to 10, got "ten"',
  ]);
});

test("oneOf() takes an allowed value exactly, case included", (t) => {
  const read = reader({ GOOD: "debug", BAD: "DEBUG" });
  const levels = ["info", "debug"] as const;
  t.is(read.oneOf("GOOD", levels, "info"), "debug");
  t.is(read.oneOf("UNSET", levels, "info"), "info");
  t.is(read.oneOf("BAD", levels, "info"), "info");
  t.deepEqual(read.problems, ['BAD must be one of info, debug, got "DEBUG"']);
});

test("boolean() takes true/1/yes and false/0/no in any case", (t) => {
  const read = reader({ A: "TRUE", B: "1", C: "Yes", D: "false", E: "0", F: "NO", G: "perhaps" });
  t.deepEqual(
    ["A", "B", "C", "D", "E", "F"].map((name) => read.boolean(name, false)),
    [true, true, true, false, false, false],
  );
  t.is(read.boolean("UNSET", true), true);
  t.is(read.boolean("G", true), true);
  t.deepEqual(read.problems, ['G must be true or false, got "perhaps"']);
});

test("url() checks the protocol and never quotes the value, which may hold a password", (t) => {
  const read = reader({ GOOD: "rediss://cache:6380", WRONG: "http://u:s3cret@cache", GARBLED: "s3cret no url" });
  t.is(read.url("GOOD", ["redis:", "rediss:"]), "rediss://cache:6380");
  t.is(read.url("UNSET", ["redis:"]), undefined);
  t.is(read.url("WRONG", ["redis:", "rediss:"]), undefined);
  t.is(read.url("GARBLED", ["redis:"]), undefined);
  t.deepEqual(read.problems, ["WRONG must be a redis:// or rediss:// URL", "GARBLED must be a redis:// URL"]);
  t.false(read.problems.some((p) => p.includes("s3cret")));
});

test("list() reads a comma list of allowed names, in order, without duplicates", (t) => {
  const names = ["auth", "chat", "scaler"] as const;
  const read = reader({ SOME: " scaler , auth,scaler ", UNKNOWN: "chat,web", EMPTY: " , " });
  t.deepEqual(read.list("SOME", names, names), ["scaler", "auth"]);
  t.deepEqual(read.list("UNSET", names, ["chat"]), ["chat"]);
  t.deepEqual(read.list("UNKNOWN", names, names), ["auth", "chat", "scaler"]);
  t.deepEqual(read.list("EMPTY", names, names), ["auth", "chat", "scaler"]);
  t.deepEqual(read.problems, [
    'UNKNOWN must be a comma list of auth, chat, scaler, got "chat,web"',
    'EMPTY must be a comma list of auth, chat, scaler, got ","',
  ]);
});

test("matching() checks a pattern, the default included, and required() notes an unset variable", (t) => {
  const read = reader({ GOOD: "chat-v2", BAD: "Chat_App" });
  const name = /^[a-z0-9-]+$/;
  t.is(read.matching("GOOD", "chat", name, "a name"), "chat-v2");
  t.is(read.matching("UNSET", "chat", name, "a name"), "chat");
  t.is(read.matching("BAD", "chat", name, "a name"), "Chat_App");
  t.is(read.matching("UNSET", "Not OK", name, "a name"), "Not OK");
  t.is(read.required("GOOD", "the name"), "chat-v2");
  t.is(read.required("UNSET", "the name"), undefined);
  t.deepEqual(read.problems, ['BAD must be a name, got "Chat_App"', 'UNSET must be a name, got "Not OK"', "UNSET is required: the name"]);
});

test("check() throws every problem at once, in reading order, and nothing when there is none", (t) => {
  class TestConfigError extends EnvError {
    override name = "TestConfigError";
  }
  const clean = reader({ PORT: "80" });
  clean.int("PORT", 1, 1, 65535);
  t.notThrows(() => clean.check((problems) => new TestConfigError(problems)));

  const read = reader({ PORT: "x", LEVEL: "loud" });
  read.int("PORT", 1, 1, 65535);
  read.oneOf("LEVEL", ["info"], "info");
  read.problem("PORT and LEVEL disagree");
  const err = t.throws(() => read.check((problems) => new TestConfigError(problems)), { instanceOf: TestConfigError });
  t.true(err instanceof EnvError);
  t.is(err?.name, "TestConfigError");
  t.deepEqual(err?.problems, [
    'PORT must be an integer from 1 to 65535, got "x"',
    'LEVEL must be one of info, got "loud"',
    "PORT and LEVEL disagree",
  ]);
  t.is(err?.message, `invalid configuration:\n  - ${err?.problems.join("\n  - ")}`);
});
