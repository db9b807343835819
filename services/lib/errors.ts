import { Metadata, status, type ServiceError } from "@grpc/grpc-js";
import { AppError, type ErrorKind, isDataException, isUnavailable } from "./app-error.js";
import type { Logger } from "./logger.js";
import { truncate } from "./text.js";

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

/** A status message is at most this many characters (code points), so no input can make the trailers large. */
export const MAX_DETAILS_CHARS = 256;

export interface StatusObject {
  code: status;
  details: string;
}

/** How a failure is logged: a refusal the client caused at info, a dependency down at warn, a bug at error. */
export type FailureLevel = "info" | "warn" | "error";

/**
 * Maps any thrown value to a gRPC status whose `details` is at most
 * `MAX_DETAILS_CHARS` code points, and the level it is logged at. Pure: it
 * logs nothing (`logFailure` does). Unknown errors become INTERNAL with a
 * generic message; their cause never reaches the client. A Postgres data
 * exception (SQLSTATE class 22) is a value the client sent that the store
 * cannot keep: INVALID_ARGUMENT.
 */
export function toStatus(err: unknown): StatusObject & { level: FailureLevel } {
  if (err instanceof AppError) return { code: CODES[err.kind], details: truncate(err.message, MAX_DETAILS_CHARS), level: "info" };
  if (isDataException(err)) return { code: status.INVALID_ARGUMENT, details: "a value in the request cannot be stored", level: "warn" };
  if (isUnavailable(err)) return { code: status.UNAVAILABLE, details: "a dependency is unavailable, retry shortly", level: "warn" };
  return { code: status.INTERNAL, details: "internal error", level: "error" };
}

/** Logs a failed call at the level `toStatus` gives it, with its cause (which the status never carries). */
export function logFailure(log: Logger, err: unknown): void {
  const failure = toStatus(err);
  const cause = err instanceof AppError ? err.cause : err;
  const fields = { code: status[failure.code], reason: failure.details, ...(cause !== undefined && { err: cause }) };
  const message = { info: "request rejected", warn: "request failed: a dependency, or a value the store cannot keep", error: "unexpected error" }[
    failure.level
  ];
  log[failure.level](fields, message);
}

/** `toStatus` shaped as the error argument of a grpc-js callback or `destroy`. Pure, like `toStatus`. */
export function toServiceError(err: unknown): ServiceError {
  const { code, details } = toStatus(err);
  return Object.assign(new Error(details), { code, details, metadata: new Metadata() });
}
