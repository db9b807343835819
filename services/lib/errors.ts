import { Metadata, status, type ServiceError } from "@grpc/grpc-js";
import type { Logger } from "./logger.js";
import { truncate } from "./text.js";

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
 */
export class AppError extends Error {
  constructor(
    readonly kind: ErrorKind,
    message: string,
  ) {
    super(message);
    this.name = "AppError";
  }
}

const CODES: Record<ErrorKind, status> = {
  unauthenticated: status.UNAUTHENTICATED,
  not_found: status.NOT_FOUND,
  permission_denied: status.PERMISSION_DENIED,
  invalid_argument: status.INVALID_ARGUMENT,
  already_exists: status.ALREADY_EXISTS,
  resource_exhausted: status.RESOURCE_EXHAUSTED,
  failed_precondition: status.FAILED_PRECONDITION,
  unavailable: status.UNAVAILABLE,
};

/** Node and Postgres error codes that mean a dependency is down, not that we have a bug. */
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
]);

/** Whether `err` (or an error it wraps, as drizzle's query errors do) means a dependency is down. */
export function isUnavailable(err: unknown): boolean {
  for (
    let e = err as { code?: unknown; message?: unknown; cause?: unknown } | undefined, depth = 0;
    e && depth < 5;
    e = e.cause as typeof e, depth++
  ) {
    if (e instanceof AppError) return e.kind === "unavailable";
    const code = e.code;
    if (typeof code === "string" && (UNAVAILABLE_CODES.has(code) || code.startsWith("08"))) return true;
    const message = typeof e.message === "string" ? e.message : "";
    if (
      /Connection terminated|connection timeout|Client has encountered a connection error|timeout exceeded when trying to connect|Connection is closed|Query read timeout/i.test(
        message,
      )
    ) {
      return true;
    }
    // A Redis server that answers with an error (OOM, BUSY, READONLY, LOADING, MISCONF) is a dependency in trouble.
    if ((e as { name?: unknown }).name === "ReplyError") return true;
    // ioredis, which fails fast while Redis is unreachable (no offline queue, no retries).
    if (
      /Stream isn't writeable and enableOfflineQueue|Reached the max retries per request limit|Command timed out|Command aborted due to connection close/i.test(
        message,
      )
    ) {
      return true;
    }
  }
  return false;
}

/** Postgres SQLSTATE class 22, data exception: a value the store cannot take (22021 a NUL byte, 22P05, 22003...). */
function isDataException(err: unknown): boolean {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) {
    if (typeof e.code === "string" && /^22[0-9A-Z]{3}$/.test(e.code)) return true;
  }
  return false;
}

/** A status message is at most this many characters (code points), so no input can make the trailers large. */
export const MAX_DETAILS_CHARS = 256;

export interface StatusObject {
  code: status;
  details: string;
}

/**
 * Maps any thrown value to a gRPC status whose `details` is at most
 * `MAX_DETAILS_CHARS` code points. Unknown errors become INTERNAL with a
 * generic message and are logged with their cause, which never reaches the
 * client. A Postgres data exception (SQLSTATE class 22) is a value the client
 * sent that the store cannot keep: INVALID_ARGUMENT, logged at warn.
 */
export function toStatus(err: unknown, log: Logger): StatusObject {
  if (err instanceof AppError) {
    const details = truncate(err.message, MAX_DETAILS_CHARS);
    log.info({ kind: err.kind, reason: details }, "request rejected");
    return { code: CODES[err.kind], details };
  }
  if (isDataException(err)) {
    log.warn({ err }, "request refused by the store: a value it cannot keep");
    return { code: status.INVALID_ARGUMENT, details: "a value in the request cannot be stored" };
  }
  if (isUnavailable(err)) {
    log.warn({ err }, "dependency unavailable");
    return { code: status.UNAVAILABLE, details: "a dependency is unavailable, retry shortly" };
  }
  log.error({ err }, "unexpected error");
  return { code: status.INTERNAL, details: "internal error" };
}

/** `toStatus` shaped as the error argument of a grpc-js callback or `destroy`. */
export function toServiceError(err: unknown, log: Logger): ServiceError {
  const { code, details } = toStatus(err, log);
  return Object.assign(new Error(details), { code, details, metadata: new Metadata() });
}
