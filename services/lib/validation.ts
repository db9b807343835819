import { AppError } from "./errors.js";

const NAME = /^[A-Za-z0-9_.-]{3,32}$/;

/** Usernames and group names: 3 to 32 letters, digits, `_`, `-` and `.`. */
export function checkName(value: unknown, what: "username" | "group name"): string {
  if (typeof value !== "string" || !NAME.test(value)) {
    throw new AppError("invalid_argument", `${what} must be 3 to 32 letters, digits, "_", "-" or "."`);
  }
  return value;
}

/** Passwords: 8 to 128 characters. */
export function checkPassword(value: unknown): string {
  const length = typeof value === "string" ? [...value].length : 0;
  if (length < 8 || length > 128) {
    throw new AppError("invalid_argument", "password must be 8 to 128 characters");
  }
  return value as string;
}
