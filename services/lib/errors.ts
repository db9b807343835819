import { Metadata, status, type ServiceError } from "@grpc/grpc-js";
import type { Logger } from "./logger.js";

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

/** A failure the client caused or may retry; its message is safe to send. */
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
]);

/** Whether `err` (or an error it wraps, as drizzle's query errors do) means a dependency is down. */
export function isUnavailable(err: unknown): boolean {
  for (let e = err as { code?: unknown; message?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) {
    if (e instanceof AppError) return e.kind === "unavailable";
    const code = e.code;
    if (typeof code === "string" && (UNAVAILABLE_CODES.has(code) || code.startsWith("08"))) return true;
    const message = typeof e.message === "string" ? e.message : "";
    if (/Connection terminated|connection timeout|Client has encountered a connection error|timeout exceeded when trying to connect|Connection is closed/i.test(message)) {
      return true;
    }
    // ioredis, which fails fast while Redis is unreachable (no offline queue, no retries).
    if (/Stream isn't writeable and enableOfflineQueue|Reached the max retries per request limit|Command timed out|Command aborted due to connection close/i.test(message)) {
      return true;
    }
  }
  return false;
}

export interface StatusObject {
  code: status;
  details: string;
}

/**
 * Maps any thrown value to a gRPC status. Unknown errors become INTERNAL with a
 * generic message and are logged with their cause, which never reaches the client.
 */
export function toStatus(err: unknown, log: Logger): StatusObject {
  if (err instanceof AppError) {
    log.info({ kind: err.kind, reason: err.message }, "request rejected");
    return { code: CODES[err.kind], details: err.message };
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
