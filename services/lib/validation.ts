import { MAX_BODY_BYTES, MAX_CLIENT_MSG_ID_CHARS, NAME_PATTERN, NAME_RULE, PASSWORD_CHARS } from "./contract.js";
import { AppError } from "./app-error.js";
import { codePoints, hasNul } from "./text.js";

/** Usernames and group names (NAME_PATTERN); throws AppError `invalid_argument` naming `what`. */
export function checkName(value: unknown, what: "username" | "group name"): string {
  if (typeof value !== "string" || !NAME_PATTERN.test(value)) {
    throw new AppError("invalid_argument", `${what} must be ${NAME_RULE}`);
  }
  return value;
}

/** Passwords: 8 to 128 characters; throws AppError `invalid_argument`. */
export function checkPassword(value: unknown): string {
  const length = typeof value === "string" ? codePoints(value) : 0;
  if (length < PASSWORD_CHARS.min || length > PASSWORD_CHARS.max) {
    throw new AppError("invalid_argument", `password must be ${PASSWORD_CHARS.min} to ${PASSWORD_CHARS.max} characters`);
  }
  return value as string;
}

/** `client_msg_id`: 1 to 64 characters (code points), without U+0000; throws AppError `invalid_argument`. */
export function checkClientMsgId(value: unknown): string {
  if (typeof value !== "string" || value.length === 0 || codePoints(value) > MAX_CLIENT_MSG_ID_CHARS) {
    throw new AppError("invalid_argument", `client_msg_id must be 1 to ${MAX_CLIENT_MSG_ID_CHARS} characters`);
  }
  if (hasNul(value)) throw new AppError("invalid_argument", "client_msg_id must not contain U+0000");
  return value;
}

/**
 * `body`: not blank, at most 4096 bytes of UTF-8, without U+0000 (which
 * Postgres text cannot store); throws AppError `invalid_argument`. The chat
 * domain checks it after the duplicate check, not the transport: a retried
 * send returns its original whatever the body is now.
 */
export function checkBody(value: unknown): string {
  if (typeof value !== "string" || value.trim() === "") throw new AppError("invalid_argument", "body is empty");
  if (Buffer.byteLength(value, "utf8") > MAX_BODY_BYTES) {
    throw new AppError("invalid_argument", `body is over ${MAX_BODY_BYTES} bytes of UTF-8`);
  }
  if (hasNul(value)) throw new AppError("invalid_argument", "body must not contain U+0000");
  return value;
}
