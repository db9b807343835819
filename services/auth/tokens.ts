import { createHash, randomBytes } from "node:crypto";

/** A new bearer token: 256 random bits, base64url (43 characters). */
export function newToken(): string {
  return randomBytes(32).toString("base64url");
}

/**
 * What we store and look up instead of the token. A fast hash is right here:
 * the token has 256 bits of entropy, so there is nothing to brute-force.
 */
export function hashToken(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}
