import { status } from "@grpc/grpc-js";
import test from "ava";
import { pino } from "pino";
import { AppError, toServiceError, toStatus, type ErrorKind } from "./errors.js";

const log = pino({ level: "silent" });

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
    t.deepEqual(toStatus(new AppError(kind, `because ${kind}`), log), { code, details: `because ${kind}` });
  });
}

test("an unknown error becomes INTERNAL with a generic message, never its own text", (t) => {
  const result = toStatus(new Error("relation users_secret does not exist at /srv/app.ts:42"), log);
  t.is(result.code, status.INTERNAL);
  t.is(result.details, "internal error");
});

test("thrown non-errors become INTERNAL too", (t) => {
  for (const thrown of ["a string", 42, null, undefined, { message: "an object" }]) {
    t.deepEqual(toStatus(thrown, log), { code: status.INTERNAL, details: "internal error" });
  }
});

for (const code of ["ECONNREFUSED", "57P01", "08006"]) {
  test(`a connection error with code ${code} becomes UNAVAILABLE, with no detail leaked`, (t) => {
    const err = Object.assign(new Error(`connect ${code} 10.0.0.7:5432`), { code });
    const result = toStatus(err, log);
    t.is(result.code, status.UNAVAILABLE);
    t.false(result.details.includes("10.0.0.7"));
  });
}

for (const message of [
  "Stream isn't writeable and enableOfflineQueue options is false",
  'Reached the max retries per request limit (which is 0). Refer to "maxRetriesPerRequest" option for details.',
  "Command timed out",
]) {
  test(`ioredis failing fast while Redis is down ("${message.slice(0, 30)}…") becomes UNAVAILABLE`, (t) => {
    t.is(toStatus(new Error(message), log).code, status.UNAVAILABLE);
  });
}

test("a Postgres error that is not about the connection stays INTERNAL", (t) => {
  const err = Object.assign(new Error("duplicate key value"), { code: "23505" });
  t.is(toStatus(err, log).code, status.INTERNAL);
});

test("toServiceError carries the same code and details", (t) => {
  const err = toServiceError(new AppError("not_found", "no such group"), log);
  t.is(err.code, status.NOT_FOUND);
  t.is(err.details, "no such group");
  t.is(err.message, "no such group");
});
