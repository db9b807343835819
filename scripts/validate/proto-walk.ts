// Walks a plain object (parsed YAML or JSON) strictly against a protobuf
// message type, the way Envoy's loader reads a config: proto3 JSON mapping,
// unknown fields rejected, `@type` in every Any resolved and followed, and the
// protoc-gen-validate rules checked. protobufjs's `fromObject` is no help here:
// it silently drops keys it does not know.
import protobuf from "protobufjs";
import { checkCount, checkDuration, checkEnum, checkNumber, checkString, fieldRules, oneofRequired, type Rules } from "./pgv-rules.js";

/** One thing wrong with a config, at a path such as `static_resources.clusters[1].type`. */
export interface Problem {
  path: string;
  message: string;
}

/**
 * Finds a message or enum by full name (no leading dot), loading its .proto on
 * demand. Returns null when no such type exists; throws when a file fails to load.
 */
export type TypeResolver = (fullName: string) => protobuf.Type | protobuf.Enum | null;

/** The problems of `value` read as the message `type`; `path` prefixes every problem's path. */
export function walkMessage(value: unknown, type: protobuf.Type, resolve: TypeResolver, path = ""): Problem[] {
  const walker = new Walker(resolve);
  walker.singular(value, type, path, {});
  return walker.problems;
}

/** Nanoseconds of a proto3 JSON duration ("1.5s", "0s", "-2s"); undefined when malformed. */
export function parseDuration(value: unknown): bigint | undefined {
  const m = typeof value === "string" ? /^(-)?(\d+)(?:\.(\d{1,9}))?s$/.exec(value) : null;
  if (!m) return undefined;
  const nanos = BigInt(m[2]) * 1_000_000_000n + BigInt((m[3] ?? "").padEnd(9, "0"));
  if (nanos > 315_576_000_000n * 1_000_000_000n) return undefined;
  return m[1] ? -nanos : nanos;
}

/** `parent.key`, or `parent["key"]` when the key is not a plain identifier. */
export function childPath(parent: string, key: string | number): string {
  if (typeof key === "number") return `${parent}[${key}]`;
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) return `${parent}[${JSON.stringify(key)}]`;
  return parent ? `${parent}.${key}` : key;
}

/** The JSON name protoc derives from a field name: `stat_prefix` → `statPrefix`. */
export function jsonName(name: string): string {
  return name.replace(/_(.)/g, (_, c: string) => c.toUpperCase());
}

const INT_RANGES: Record<string, [bigint, bigint]> = {
  int32: [-(2n ** 31n), 2n ** 31n - 1n],
  sint32: [-(2n ** 31n), 2n ** 31n - 1n],
  sfixed32: [-(2n ** 31n), 2n ** 31n - 1n],
  uint32: [0n, 2n ** 32n - 1n],
  fixed32: [0n, 2n ** 32n - 1n],
  int64: [-(2n ** 63n), 2n ** 63n - 1n],
  sint64: [-(2n ** 63n), 2n ** 63n - 1n],
  sfixed64: [-(2n ** 63n), 2n ** 63n - 1n],
  uint64: [0n, 2n ** 64n - 1n],
  fixed64: [0n, 2n ** 64n - 1n],
};

/** Wrapper types are written as the bare scalar they wrap. */
const WRAPPERS: Record<string, string> = {
  "google.protobuf.DoubleValue": "double",
  "google.protobuf.FloatValue": "float",
  "google.protobuf.Int64Value": "int64",
  "google.protobuf.UInt64Value": "uint64",
  "google.protobuf.Int32Value": "int32",
  "google.protobuf.UInt32Value": "uint32",
  "google.protobuf.BoolValue": "bool",
  "google.protobuf.StringValue": "string",
  "google.protobuf.BytesValue": "bytes",
};

/** Types whose Any form is `{"@type": ..., "value": <special JSON>}` rather than inline fields. */
const SPECIAL_JSON = new Set([
  ...Object.keys(WRAPPERS),
  "google.protobuf.Any",
  "google.protobuf.Duration",
  "google.protobuf.Timestamp",
  "google.protobuf.FieldMask",
  "google.protobuf.Struct",
  "google.protobuf.Value",
  "google.protobuf.ListValue",
]);

const TYPED_STRUCTS = new Set(["xds.type.v3.TypedStruct", "udpa.type.v1.TypedStruct"]);

type Described = protobuf.Type | protobuf.Enum | string;

class Walker {
  readonly problems: Problem[] = [];
  private readonly fieldIndexes = new Map<protobuf.Type, Map<string, protobuf.Field>>();

  constructor(private readonly resolve: TypeResolver) {}

  private report(path: string, message: string): void {
    this.problems.push({ path, message });
  }

  /** One value of a field (or a list item, or a map value), its kind given by `type`. */
  singular(value: unknown, type: Described, path: string, rules: Rules): void {
    if (typeof type === "string") {
      this.scalar(value, type, path, rules[type]);
      return;
    }
    if (type instanceof protobuf.Enum) {
      this.enumValue(value, type, path, rules.enum);
      return;
    }
    const name = fullName(type);
    if (name in WRAPPERS) {
      this.scalar(value, WRAPPERS[name], path, rules[WRAPPERS[name]]);
      return;
    }
    switch (name) {
      case "google.protobuf.Any":
        this.any(value, path, rules.any);
        return;
      case "google.protobuf.Duration": {
        const nanos = parseDuration(value);
        if (nanos === undefined) {
          this.report(path, `expected a duration such as "1.5s", got ${show(value)}`);
          return;
        }
        for (const m of checkDuration(nanos, rules.duration)) this.report(path, m);
        return;
      }
      case "google.protobuf.Timestamp":
        if (typeof value !== "string" || !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$/.test(value)) {
          this.report(path, `expected an RFC 3339 timestamp, got ${show(value)}`);
        }
        return;
      case "google.protobuf.FieldMask":
        if (typeof value !== "string") this.report(path, `expected a field mask string, got ${show(value)}`);
        return;
      case "google.protobuf.Struct":
        if (!isObject(value)) this.report(path, `expected an object (google.protobuf.Struct), got ${show(value)}`);
        return;
      case "google.protobuf.ListValue":
        if (!Array.isArray(value)) this.report(path, `expected a list (google.protobuf.ListValue), got ${show(value)}`);
        return;
      case "google.protobuf.Value":
        return;
    }
    this.message(value, type, path);
  }

  private message(value: unknown, type: protobuf.Type, path: string): void {
    if (!isObject(value)) {
      this.report(path, `expected an object (${fullName(type)}), got ${show(value)}`);
      return;
    }
    const index = this.fieldIndex(type);
    const seen = new Map<protobuf.Field, string>();
    for (const [key, item] of Object.entries(value)) {
      const field = index.get(key);
      const at = childPath(path, key);
      if (!field) {
        this.report(at, `unknown field "${key}" in ${fullName(type)}`);
        continue;
      }
      if (seen.has(field)) this.report(at, `"${key}" and "${seen.get(field)}" are the same field`);
      seen.set(field, key);
      if (field.options?.deprecated) this.report(at, `"${field.name}" is deprecated in ${fullName(type)}`);
      if (item === null) this.absent(field, at);
      else this.field(item, field, at);
    }
    for (const oneof of type.oneofsArray) {
      const set = oneof.fieldsArray.filter((f) => seen.has(f) && value[seen.get(f)!] !== null);
      if (set.length > 1) this.report(path, `only one of ${set.map((f) => f.name).join(", ")} may be set (oneof ${oneof.name})`);
      if (set.length === 0 && oneofRequired(oneof)) {
        this.report(path, `one of ${oneof.fieldsArray.map((f) => f.name).join(", ")} is required (oneof ${oneof.name})`);
      }
    }
    for (const field of type.fieldsArray) if (!seen.has(field)) this.absent(field, childPath(path, field.name));
  }

  private field(value: unknown, field: protobuf.Field, path: string): void {
    const rules = fieldRules(field);
    const type = describe(field);
    if (field instanceof protobuf.MapField) {
      if (!isObject(value)) {
        this.report(path, `expected a map (object), got ${show(value)}`);
        return;
      }
      for (const m of checkCount(Object.keys(value).length, rules.map, "entries")) this.report(path, m);
      for (const [key, item] of Object.entries(value)) {
        const at = childPath(path, key);
        if (field.keyType !== "string") this.scalar(mapKey(key, field.keyType), field.keyType, at, undefined);
        else for (const m of checkString(key, rules.map?.keys?.string)) this.report(at, `key ${m}`);
        this.singular(item, type, at, rules.map?.values ?? {});
      }
      return;
    }
    if (field.repeated) {
      if (!Array.isArray(value)) {
        this.report(path, `expected a list, got ${show(value)}`);
        return;
      }
      for (const m of checkCount(value.length, rules.repeated, "items")) this.report(path, m);
      if (rules.repeated?.unique && new Set(value.map((v) => JSON.stringify(v))).size !== value.length) {
        this.report(path, "items must be unique");
      }
      for (const [i, item] of value.entries()) this.singular(item, type, childPath(path, i), rules.repeated?.items ?? {});
      return;
    }
    this.singular(value, type, path, rules);
  }

  /** A field left out: required messages are missing, and scalar rules apply to the default. */
  private absent(field: protobuf.Field, path: string): void {
    const rules = fieldRules(field);
    if (field instanceof protobuf.MapField) {
      for (const m of checkCount(0, rules.map, "entries")) this.report(path, m);
      return;
    }
    if (field.repeated) {
      for (const m of checkCount(0, rules.repeated, "items")) this.report(path, m);
      return;
    }
    // PGV checks a oneof member only when it is the one set.
    const inRealOneof = field.partOf !== null && !field.partOf.name.startsWith("_");
    if (inRealOneof || field.options?.proto3_optional) return;
    if (rules.message?.required || rules.duration?.required || rules.any?.required || rules.timestamp?.required) {
      this.report(path, `"${field.name}" is required`);
      return;
    }
    const type = describe(field);
    if (type instanceof protobuf.Enum) for (const m of checkEnum(0, rules.enum)) this.report(path, `(unset) ${m}`);
    if (typeof type !== "string") return;
    const defaultValue = type === "string" || type === "bytes" ? "" : type === "bool" ? false : 0;
    const before = this.problems.length;
    this.scalar(defaultValue, type, path, rules[type]);
    for (const p of this.problems.slice(before)) p.message = `(unset) ${p.message}`;
  }

  private scalar(value: unknown, kind: string, path: string, rules: Rules | undefined): void {
    const bad = (what: string) => this.report(path, `expected ${what}, got ${show(value)}`);
    if (kind === "string") {
      if (typeof value !== "string") {
        bad("a string");
        return;
      }
      for (const m of checkString(value, rules)) this.report(path, m);
    } else if (kind === "bool") {
      if (typeof value !== "boolean") {
        bad("true or false");
        return;
      }
      if (rules?.const !== undefined && value !== rules.const) this.report(path, `must be ${rules.const}`);
    } else if (kind === "bytes") {
      if (typeof value !== "string" || !/^[A-Za-z0-9+/_-]*={0,2}$/.test(value)) {
        bad("base64 bytes");
        return;
      }
      const length = Buffer.from(value, "base64").length;
      if (rules?.min_len !== undefined && length < Number(rules.min_len)) this.report(path, `must be at least ${rules.min_len} bytes`);
      if (rules?.max_len !== undefined && length > Number(rules.max_len)) this.report(path, `must be at most ${rules.max_len} bytes`);
    } else if (kind === "double" || kind === "float") {
      const n = typeof value === "string" && value.trim() !== "" ? Number(value) : value;
      if (typeof n !== "number" || (Number.isNaN(n) && value !== "NaN")) {
        bad("a number");
        return;
      }
      for (const m of checkNumber(n, rules)) this.report(path, m);
    } else if (kind in INT_RANGES) {
      const n = toBigInt(value);
      const [min, max] = INT_RANGES[kind];
      if (n === undefined) {
        bad(`an integer (${kind})`);
        return;
      }
      if (n < min || n > max) {
        this.report(path, `${show(value)} is out of range for ${kind}`);
        return;
      }
      for (const m of checkNumber(Number(n), rules)) this.report(path, m);
    } else {
      this.report(path, `cannot check values of type ${kind}`);
    }
  }

  private enumValue(value: unknown, type: protobuf.Enum, path: string, rules: Rules | undefined): void {
    if (fullName(type) === "google.protobuf.NullValue") {
      if (value !== null && value !== "NULL_VALUE") this.report(path, `expected null, got ${show(value)}`);
      return;
    }
    const names = Object.keys(type.values);
    const name = typeof value === "string" ? value : names.find((n) => type.values[n] === value);
    if (name === undefined || !(name in type.values)) {
      this.report(path, `${show(value)} is not a value of ${fullName(type)} (one of ${names.join(", ")})`);
      return;
    }
    if (type.valuesOptions?.[name]?.deprecated) this.report(path, `${name} is deprecated in ${fullName(type)}`);
    for (const m of checkEnum(type.values[name], rules)) this.report(path, m);
  }

  private any(value: unknown, path: string, rules: Rules | undefined): void {
    if (!isObject(value)) {
      this.report(path, `expected an object with "@type", got ${show(value)}`);
      return;
    }
    const typePath = childPath(path, "@type");
    const url = value["@type"];
    if (typeof url !== "string") {
      this.report(typePath, `"@type" is required, e.g. "type.googleapis.com/<full.message.Name>"`);
      return;
    }
    if (rules?.in && !rules.in.includes(url)) this.report(typePath, `must be one of ${rules.in.join(", ")}`);
    if (rules?.not_in?.includes(url)) this.report(typePath, `${url} is not allowed here`);
    const type = this.lookup(url, typePath);
    if (!type) return;
    if (SPECIAL_JSON.has(fullName(type))) {
      for (const key of Object.keys(value)) {
        if (key !== "@type" && key !== "value")
          this.report(childPath(path, key), `unknown field "${key}": a ${fullName(type)} in an Any has only "value"`);
      }
      this.singular(value.value, type, childPath(path, "value"), {});
      return;
    }
    const { "@type": _, ...fields } = value;
    this.message(fields, type, path);
    // TypedStruct carries a config as a Struct plus its type URL: check the config too.
    if (TYPED_STRUCTS.has(fullName(type)) && typeof fields.type_url === "string" && isObject(fields.value)) {
      const inner = this.lookup(fields.type_url, childPath(path, "type_url"));
      if (inner) this.message(fields.value, inner, childPath(path, "value"));
    }
  }

  /** The message a type URL names, or undefined after reporting why not. */
  private lookup(url: string, path: string): protobuf.Type | undefined {
    const slash = url.lastIndexOf("/");
    const name = url.slice(slash + 1);
    if (slash < 0 || !name) {
      this.report(path, `"${url}" is not a type URL; expected "type.googleapis.com/<full.message.Name>"`);
      return undefined;
    }
    let found: protobuf.Type | protobuf.Enum | null;
    try {
      found = this.resolve(name);
    } catch (err) {
      this.report(path, `could not load the protos for ${name}: ${err instanceof Error ? err.message : String(err)}`);
      return undefined;
    }
    if (!(found instanceof protobuf.Type)) {
      this.report(path, `unknown type "${name}": no such message in Envoy's v3 API`);
      return undefined;
    }
    if (found.options?.deprecated) this.report(path, `${name} is deprecated`);
    return found;
  }

  /** Field by proto name or by JSON name. */
  private fieldIndex(type: protobuf.Type): Map<string, protobuf.Field> {
    let index = this.fieldIndexes.get(type);
    if (!index) {
      index = new Map();
      for (const field of type.fieldsArray) {
        index.set(field.name, field);
        index.set(typeof field.options?.json_name === "string" ? field.options.json_name : jsonName(field.name), field);
      }
      this.fieldIndexes.set(type, index);
    }
    return index;
  }
}

function describe(field: protobuf.Field): Described {
  field.resolve();
  const resolved = field.resolvedType;
  return resolved instanceof protobuf.Type || resolved instanceof protobuf.Enum ? resolved : field.type;
}

function fullName(type: protobuf.ReflectionObject): string {
  return type.fullName.replace(/^\./, "");
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function toBigInt(value: unknown): bigint | undefined {
  if (typeof value === "number") return Number.isInteger(value) ? BigInt(value) : undefined;
  if (typeof value === "string" && /^-?\d+$/.test(value)) return BigInt(value);
  return undefined;
}

/** Map keys are always strings in JSON; turn them back into what the key type expects. */
function mapKey(key: string, keyType: string): unknown {
  if (keyType === "bool") return key === "true" ? true : key === "false" ? false : key;
  return key;
}

function show(value: unknown): string {
  if (value === undefined) return "nothing";
  const text = JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
