// What kind of failure an error is, in domain terms and without gRPC: the
// domain throws AppError, and the drivers' failures are told apart by code.
// lib/errors.ts maps both to a gRPC status.

/** What went wrong, in domain terms; `toStatus` is the one place that turns it into gRPC. */
export type ErrorKind =
  | "unauthenticated"
  | "not_found"
  | "permission_denied"
  | "invalid_argument"
  | "already_exists"
  | "resource_exhausted"
  | "failed_precondition"
  | "unavailable";

/**
 * A failure the client caused or may retry; its message is safe to send. A
 * message that mentions client input shows it with `quote` (lib/text.ts), and
 * `toStatus` caps every message at `MAX_DETAILS_CHARS` whatever it holds.
 * `options.cause` (the error underneath, as in connect-es's `ConnectError`)
 * is logged by `logFailure` and never sent.
 */
export class AppError extends Error {
  constructor(
    readonly kind: ErrorKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "AppError";
  }
}

/**
 * The code that our Postgres and Redis clients put on a failure that carries
 * no code of its own: the connection failed, not the request (a connection
 * terminated, a timeout, a Redis error reply). See `markDependencyFailure`.
 */
const DEPENDENCY_FAILED = "PARLEY_DEPENDENCY_FAILED";

/** Error codes that mean a dependency is down, not that we have a bug: Node's socket errors, Postgres SQLSTATEs, ours. */
const UNAVAILABLE_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "ENOTFOUND",
  "EHOSTUNREACH",
  "57P01", // admin_shutdown
  "57P02", // crash_shutdown
  "57P03", // cannot_connect_now
  "53300", // too_many_connections
  "57014", // query_canceled: statement_timeout, so the statement was rolled back
  "55P03", // lock_not_available
  "40001", // serialization_failure
  "40P01", // deadlock_detected
  DEPENDENCY_FAILED,
]);

/** The `code` of `err` and of each error it wraps (`cause`, as drizzle's query errors do), outermost first; at most 5 deep. */
function* codesOf(err: unknown): Generator<{ error: object; code: string | undefined }> {
  for (
    let e = err as { code?: unknown; cause?: unknown } | undefined, depth = 0;
    e && typeof e === "object" && depth < 5;
    e = e.cause as typeof e, depth++
  ) {
    yield { error: e, code: typeof e.code === "string" ? e.code : undefined };
  }
}

/**
 * Marks a failure from a Postgres or Redis client as the dependency's
 * (`code` DEPENDENCY_FAILED), unless it carries a code already (a SQLSTATE,
 * a socket errno) or is a programming error (TypeError, RangeError: a bad
 * parameter is our bug, not an outage). The drivers name these failures only
 * in their message text, so the clients mark them where they are raised
 * (db/client.ts, lib/redis.ts), and `isUnavailable` reads codes only.
 * Returns `err`, changed in place (its class and message are kept: ioredis
 * reads the message of a NOSCRIPT reply).
 */
export function markDependencyFailure(err: unknown): unknown {
  if (err instanceof Error && !(err instanceof TypeError) && !(err instanceof RangeError)) {
    const coded = err as Error & { code?: unknown };
    if (typeof coded.code !== "string") coded.code = DEPENDENCY_FAILED;
  }
  return err;
}

/** Whether `err` (or an error it wraps) means a dependency is down: by error code only, never by message text. */
export function isUnavailable(err: unknown): boolean {
  for (const { error, code } of codesOf(err)) {
    if (error instanceof AppError) return error.kind === "unavailable";
    if (code !== undefined && (UNAVAILABLE_CODES.has(code) || /^08[0-9A-Z]{3}$/.test(code))) return true;
  }
  return false;
}

/** Postgres SQLSTATE class 22, data exception: a value the store cannot take (22021 a NUL byte, 22P05, 22003...). */
export function isDataException(err: unknown): boolean {
  for (const { code } of codesOf(err)) if (code !== undefined && /^22[0-9A-Z]{3}$/.test(code)) return true;
  return false;
}

/** Postgres SQLSTATE 23505, unique_violation: the row exists already (a name taken, a client_msg_id used). */
export function isUniqueViolation(err: unknown): boolean {
  for (const { code } of codesOf(err)) if (code === "23505") return true;
  return false;
}

/**
 * The `detail` of a unique violation (SQLSTATE 23505), which Postgres words
 * `Key (<columns>)=(<values>) already exists.`; undefined for any other error.
 */
export function uniqueViolationDetail(err: unknown): string | undefined {
  for (const { error, code } of codesOf(err)) {
    const { detail } = error as { detail?: unknown };
    if (code === "23505" && typeof detail === "string") return detail;
  }
  return undefined;
}
