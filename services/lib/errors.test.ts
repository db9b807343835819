import { status } from "@grpc/grpc-js";
import test from "ava";
import { pino } from "pino";
import { AppError, type ErrorKind, markDependencyFailure } from "./app-error.js";
import { logFailure, MAX_DETAILS_CHARS, toServiceError, toStatus } from "./errors.js";
import { codePoints, quote, QUOTE_CHARS } from "./text.js";

const EXPECTED: [ErrorKind, status][] = [
  ["unauthenticated", status.UNAUTHENTICATED],
  ["not_found", status.NOT_FOUND],
  ["permission_denied", status.PERMISSION_DENIED],
  ["invalid_argument", status.INVALID_ARGUMENT],
  ["already_exists", status.ALREADY_EXISTS],
  ["resource_exhausted", status.RESOURCE_EXHAUSTED],
  ["failed_precondition", status.FAILED_PRECONDITION],
  ["unavailable", status.UNAVAILABLE],
];

for (const [kind, code] of EXPECTED) {
  test(`AppError "${kind}" becomes ${status[code]} with its own message`, (t) => {
    t.like(toStatus(new AppError(kind, `because ${kind}`)), { code, details: `because ${kind}`, level: "info" });
  });
}

test("an unknown error becomes INTERNAL with a generic message, never its own text", (t) => {
  const result = toStatus(new Error("relation users_secret does not exist at /srv/app.ts:42"));
  t.is(result.code, status.INTERNAL);
  t.is(result.details, "internal error");
});

test("thrown non-errors become INTERNAL too", (t) => {
  for (const thrown of ["a string", 42, null, undefined, { message: "an object" }]) {
    t.like(toStatus(thrown), { code: status.INTERNAL, details: "internal error", level: "error" });
  }
});

for (const code of ["ECONNREFUSED", "57P01", "08006"]) {
  test(`a connection error with code ${code} becomes UNAVAILABLE, with no detail leaked`, (t) => {
    const err = Object.assign(new Error(`connect ${code} 10.0.0.7:5432`), { code });
    const result = toStatus(err);
    t.is(result.code, status.UNAVAILABLE);
    t.false(result.details.includes("10.0.0.7"));
  });
}

for (const message of [
  "Stream isn't writeable and enableOfflineQueue options is false",
  'Reached the max retries per request limit (which is 0). Refer to "maxRetriesPerRequest" option for details.',
  "Command timed out",
  "Connection terminated unexpectedly",
  "Query read timeout",
]) {
  test(`a driver failure ("${message.slice(0, 30)}…") is UNAVAILABLE once its client marked it, never by its text alone`, (t) => {
    t.is(toStatus(new Error(message)).code, status.INTERNAL);
    t.is(toStatus(markDependencyFailure(new Error(message))).code, status.UNAVAILABLE);
    // As drizzle wraps it.
    t.is(toStatus(new Error("Failed query", { cause: markDependencyFailure(new Error(message)) })).code, status.UNAVAILABLE);
  });
}

test("markDependencyFailure keeps a code of its own, and a programming error stays INTERNAL", (t) => {
  const unique = markDependencyFailure(Object.assign(new Error("duplicate key value"), { code: "23505" }));
  t.is((unique as { code: string }).code, "23505");
  t.is(toStatus(markDependencyFailure(new TypeError("x is not a function"))).code, status.INTERNAL);
});

test("toStatus logs nothing; logFailure logs the cause, which the status never carries", (t) => {
  const lines: Record<string, unknown>[] = [];
  const sink = pino({ level: "trace" }, { write: (line: string) => lines.push(JSON.parse(line)) });
  const err = new AppError("unavailable", "the message may not be stored: retry", { cause: new Error("secret connection detail") });
  const failure = toStatus(err);
  t.is(lines.length, 0);
  t.deepEqual({ code: failure.code, details: failure.details }, { code: status.UNAVAILABLE, details: "the message may not be stored: retry" });
  logFailure(sink, err);
  t.is(lines.length, 1);
  t.is((lines[0].err as { message: string }).message, "secret connection detail");
  t.false(toServiceError(err).details.includes("secret"));
});

test("a Postgres error that is not about the connection stays INTERNAL", (t) => {
  const err = Object.assign(new Error("duplicate key value"), { code: "23505" });
  t.is(toStatus(err).code, status.INTERNAL);
});

test("toServiceError carries the same code and details", (t) => {
  const err = toServiceError(new AppError("not_found", "no such group"));
  t.is(err.code, status.NOT_FOUND);
  t.is(err.details, "no such group");
  t.is(err.message, "no such group");
});

test("every status message is at most 256 characters (code points), whatever the AppError held", (t) => {
  for (const message of ["x".repeat(2000), "é".repeat(15_000), "😀".repeat(300), `no conversation ${"\u0000".repeat(500)}`]) {
    const { details } = toStatus(new AppError("not_found", message));
    t.true([...details].length <= MAX_DETAILS_CHARS, `${[...details].length} characters`);
    t.true(details.endsWith("…"));
    t.is(toServiceError(new AppError("not_found", message)).details, details);
  }
  const short = "no such group";
  t.is(toStatus(new AppError("not_found", short)).details, short);
});

test("a status message never splits a surrogate pair, nor carries a lone one", (t) => {
  const { details } = toStatus(new AppError("invalid_argument", `${"a".repeat(254)}😀😀😀`));
  t.is(details, `${"a".repeat(254)}😀…`);
  t.is(toStatus(new AppError("invalid_argument", "bad \ud800 text")).details, "bad \ufffd text");
});

for (const code of ["22021", "22P05", "22003", "22001"]) {
  test(`a Postgres data exception ${code} (the store cannot keep a value) becomes INVALID_ARGUMENT, generic, logged below error`, (t) => {
    const lines: { level: number }[] = [];
    const sink = pino({ level: "trace" }, { write: (line: string) => lines.push(JSON.parse(line)) });
    // As drizzle wraps it: the driver's error is the cause.
    const err = Object.assign(new Error("Failed query: insert ... params: secret\u0000body"), {
      cause: Object.assign(new Error('invalid byte sequence for encoding "UTF8": 0x00'), { code }),
    });
    const result = toStatus(err);
    logFailure(sink, err);
    t.is(result.code, status.INVALID_ARGUMENT);
    t.false(result.details.includes("secret"));
    t.true(lines.length > 0 && lines.every((l) => l.level < 50));
  });
}

test("quote shows a short, escaped prefix of client input", (t) => {
  t.is(quote("devs"), '"devs"');
  t.is(quote("x".repeat(2000)), `"${"x".repeat(QUOTE_CHARS - 1)}…"`);
  t.is(quote("a\u0000b"), '"a\\u0000b"');
  t.is(quote("\ud800"), '"\ufffd"');
  t.is(quote(undefined), "(undefined)");
  t.true(quote("é".repeat(15_000)).length <= QUOTE_CHARS + 2);
});

test("codePoints counts characters, not UTF-16 units", (t) => {
  t.is(codePoints("😀".repeat(64)), 64);
  t.is(codePoints("a\ud800b"), 3);
  t.is(codePoints("\u202Eabc"), 4);
});
