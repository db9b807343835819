// Client text in messages and checks: lengths in code points, short quotes,
// and the one character the store cannot keep.

/** Characters of client input a message quotes, at most; longer input is cut and marked with "…". */
export const QUOTE_CHARS = 32;

/** The length of `text` in Unicode code points (what the design calls characters), not UTF-16 units. */
export function codePoints(text: string): number {
  let count = 0;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    // A high surrogate followed by a low one is one code point.
    if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) i++;
    }
    count++;
  }
  return count;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * `text` cut to at most `max` code points (never between the halves of a
 * surrogate pair), ending in "…" when it was cut; lone surrogates become
 * U+FFFD, so the result always encodes as UTF-8 (and as a grpc-message).
 */
export function truncate(text: string, max: number): string {
  const wellFormed = text.replace(LONE_SURROGATE, "\uFFFD");
  if (wellFormed.length <= max) return wellFormed; // fewer units than `max` means fewer code points too
  if (codePoints(wellFormed) <= max) return wellFormed;
  let out = "";
  let count = 0;
  for (const char of wellFormed) {
    if (count === max - 1) break;
    out += char;
    count++;
  }
  return `${out}…`;
}

/**
 * Client input as an error message may show it: a JSON-quoted prefix of at
 * most `QUOTE_CHARS` code points (control characters escaped, "…" when cut),
 * so no input can make a status message long. Non-strings are shown by type.
 */
export function quote(input: unknown): string {
  if (typeof input !== "string") return `(${input === null ? "null" : typeof input})`;
  return JSON.stringify(truncate(input, QUOTE_CHARS));
}

/** Whether `text` holds U+0000, which Postgres text cannot store. */
export function hasNul(text: string): boolean {
  return text.includes("\u0000");
}
