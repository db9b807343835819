// The protoc-gen-validate constraints Envoy enforces when it loads a config
// ("Proto constraint validation failed"), re-checked here on plain JSON values.
// Envoy's protos carry them as `(validate.rules)` field options, which
// protobufjs keeps, structured, in `parsedOptions`.
//
// Covered: required messages, durations and Any; string, bytes, number, bool,
// enum, duration, Any, repeated and map rules. Not covered: timestamp rules and
// the rarer string formats (email, uri, address); those fields do not occur in
// Parley's config.
import { isIP } from "node:net";
import type protobuf from "protobufjs";

/** The `(validate.rules)` object of one field: `{ string: { min_len: 1 } }`, `{ message: { required: true } }`, ... */
export type Rules = Record<string, any>;

/** The merged `(validate.rules)` of a field; empty when it has none. */
export function fieldRules(field: protobuf.FieldBase): Rules {
  let merged: Rules = {};
  // Typed as a record in protobufjs's .d.ts, but an array of `{ "(option)": value }` at run time.
  const entries = (field.parsedOptions ?? []) as unknown as Record<string, unknown>[];
  for (const entry of entries) {
    const rules = entry["(validate.rules)"];
    if (rules && typeof rules === "object") merged = deepMerge(merged, rules as Rules);
  }
  return merged;
}

/** True when a oneof carries `option (validate.required) = true`. */
export function oneofRequired(oneof: protobuf.OneOf): boolean {
  return oneof.options?.["(validate.required)"] === true;
}

/** Nanoseconds of a PGV duration bound such as `{ seconds: 1 }` or `{}` (zero). */
export function boundNanos(bound: { seconds?: number | string; nanos?: number } | undefined): bigint {
  return BigInt(bound?.seconds ?? 0) * 1_000_000_000n + BigInt(bound?.nanos ?? 0);
}

/** Violations of string rules. */
export function checkString(value: string, r: Rules | undefined): string[] {
  if (!r || (r.ignore_empty && value === "")) return [];
  const out: string[] = [];
  const runes = [...value].length;
  const bytes = Buffer.byteLength(value, "utf8");
  if (r.const !== undefined && value !== r.const) out.push(`must equal "${r.const}"`);
  if (r.len !== undefined && runes !== Number(r.len)) out.push(`must be exactly ${count(r.len, "character")}`);
  if (r.min_len !== undefined && runes < Number(r.min_len)) out.push(`must be at least ${count(r.min_len, "character")}`);
  if (r.max_len !== undefined && runes > Number(r.max_len)) out.push(`must be at most ${count(r.max_len, "character")}`);
  if (r.min_bytes !== undefined && bytes < Number(r.min_bytes)) out.push(`must be at least ${count(r.min_bytes, "byte")}`);
  if (r.max_bytes !== undefined && bytes > Number(r.max_bytes)) out.push(`must be at most ${count(r.max_bytes, "byte")}`);
  if (r.prefix !== undefined && !value.startsWith(r.prefix)) out.push(`must start with "${r.prefix}"`);
  if (r.suffix !== undefined && !value.endsWith(r.suffix)) out.push(`must end with "${r.suffix}"`);
  if (r.contains !== undefined && !value.includes(r.contains)) out.push(`must contain "${r.contains}"`);
  if (r.not_contains !== undefined && value.includes(r.not_contains)) out.push(`must not contain "${r.not_contains}"`);
  if (r.in !== undefined && !list(r.in).includes(value)) out.push(`must be one of ${list(r.in).join(", ")}`);
  if (r.not_in !== undefined && list(r.not_in).includes(value)) out.push(`must not be ${value}`);
  const pattern = r.pattern === undefined ? null : regexOrNull(r.pattern);
  if (pattern && !pattern.test(value)) out.push(`must match /${r.pattern}/`);
  if (r.ip && isIP(value) === 0) out.push("must be an IP address");
  if (r.ipv4 && isIP(value) !== 4) out.push("must be an IPv4 address");
  if (r.ipv6 && isIP(value) !== 6) out.push("must be an IPv6 address");
  if (r.well_known_regex !== undefined) {
    const re = headerRegex(r.well_known_regex, r.strict !== false);
    if (re && !re.test(value)) out.push(`must be a valid ${r.well_known_regex}`);
  }
  return out;
}

/** Violations of numeric rules (int32 ... double, and their wrappers). */
export function checkNumber(value: number, r: Rules | undefined): string[] {
  if (!r) return [];
  const out: string[] = [];
  if (r.const !== undefined && value !== Number(r.const)) out.push(`must equal ${r.const}`);
  if (r.in !== undefined && !list(r.in).map(Number).includes(value)) out.push(`must be one of ${list(r.in).join(", ")}`);
  if (r.not_in !== undefined && list(r.not_in).map(Number).includes(value)) out.push(`must not be ${value}`);
  const num = (b: unknown) => (b === undefined ? undefined : Number(b));
  const range = checkRange(value, num(r.gt), num(r.gte), num(r.lt), num(r.lte), String);
  if (range) out.push(range);
  return out;
}

/** Violations of duration rules; `nanos` is the parsed value. */
export function checkDuration(nanos: bigint, r: Rules | undefined): string[] {
  if (!r) return [];
  const out: string[] = [];
  const bound = (b: unknown) => (b === undefined ? undefined : boundNanos(b as { seconds?: number; nanos?: number }));
  if (r.const !== undefined && nanos !== bound(r.const)) out.push("must equal the required constant");
  const range = checkRange(nanos, bound(r.gt), bound(r.gte), bound(r.lt), bound(r.lte), (n) => `${Number(n) / 1e9}s`);
  if (range) out.push(range);
  return out;
}

/** Violations of enum rules, given the enum value's number. */
export function checkEnum(num: number, r: Rules | undefined): string[] {
  if (!r) return [];
  const out: string[] = [];
  if (r.const !== undefined && num !== Number(r.const)) out.push(`must be the value numbered ${r.const}`);
  if (r.in !== undefined && !list(r.in).map(Number).includes(num)) out.push(`must be one of the values numbered ${list(r.in).join(", ")}`);
  if (r.not_in !== undefined && list(r.not_in).map(Number).includes(num)) out.push(`the value numbered ${num} is not allowed here`);
  return out;
}

/** Violations of repeated or map size rules. */
export function checkCount(count: number, r: Rules | undefined, noun: "items" | "entries"): string[] {
  if (!r) return [];
  const min = r.min_items ?? r.min_pairs;
  const max = r.max_items ?? r.max_pairs;
  const out: string[] = [];
  if (min !== undefined && count < Number(min)) out.push(`needs at least ${min} ${noun}, has ${count}`);
  if (max !== undefined && count > Number(max)) out.push(`allows at most ${max} ${noun}, has ${count}`);
  return out;
}

/**
 * PGV's range semantics: with both a lower and an upper bound, lower < upper
 * means "inside", lower > upper means "outside" (an exclusive range).
 */
function checkRange<T extends number | bigint>(
  value: T,
  gt: T | undefined,
  gte: T | undefined,
  lt: T | undefined,
  lte: T | undefined,
  show: (n: T) => string,
): string | undefined {
  const above = gt !== undefined ? value > gt : gte !== undefined ? value >= gte : undefined;
  const below = lt !== undefined ? value < lt : lte !== undefined ? value <= lte : undefined;
  const lower = gt ?? gte;
  const upper = lt ?? lte;
  const lowerText = lower === undefined ? "" : `${gt !== undefined ? ">" : ">="} ${show(lower)}`;
  const upperText = upper === undefined ? "" : `${lt !== undefined ? "<" : "<="} ${show(upper)}`;
  if (lower !== undefined && upper !== undefined && lower > upper) {
    return above || below ? undefined : `must be ${lowerText} or ${upperText}`;
  }
  if (above === false || below === false) return `must be ${[lowerText, upperText].filter(Boolean).join(" and ")}`;
  return undefined;
}

/** PGV's HTTP header regexes (validate.proto, KnownRegex). */
function headerRegex(kind: string, strict: boolean): RegExp | undefined {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: PGV's rule is about control characters
  if (kind === "HTTP_HEADER_NAME") return strict ? /^:?[0-9a-zA-Z!#$%&'*+\-.^_|~`]+$/ : /^[^\u0000\u000A\u000D]+$/;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: PGV's rule is about control characters
  if (kind === "HTTP_HEADER_VALUE") return strict ? /^[^\u0000-\u0008\u000A-\u001F\u007F]*$/ : /^[^\u0000\u000A\u000D]*$/;
  return undefined;
}

/** RE2 and JavaScript agree on the patterns Envoy uses; one JS cannot compile is skipped. */
function regexOrNull(pattern: string): RegExp | null {
  for (const flags of ["u", ""]) {
    try {
      return new RegExp(pattern, flags);
    } catch {
      // try without the unicode flag, then give up
    }
  }
  return null;
}

function count(n: unknown, noun: string): string {
  return `${n} ${noun}${Number(n) === 1 ? "" : "s"}`;
}

function list(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [value];
}

function deepMerge(a: Rules, b: Rules): Rules {
  const out: Rules = { ...a };
  for (const [key, value] of Object.entries(b)) {
    const prev = out[key];
    const bothObjects = prev && typeof prev === "object" && !Array.isArray(prev) && value && typeof value === "object" && !Array.isArray(value);
    out[key] = bothObjects ? deepMerge(prev, value) : value;
  }
  return out;
}
