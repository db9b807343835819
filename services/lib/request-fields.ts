// What the transport checks in every decoded request, field by field, with the
// proto descriptors as the map: text the store cannot keep, numbers beyond
// what a JavaScript number holds. Fields are named as the .proto names them.
import { createRequire } from "node:module";
import protobuf from "protobufjs";
import { fileDescriptorSetBase64 } from "../../gen/descriptor-set.js";
import { hasNul } from "./text.js";

// protobufjs's descriptor extension is CommonJS only.
const { FileDescriptorSet } = createRequire(import.meta.url)("protobufjs/ext/descriptor") as {
  FileDescriptorSet: { decode(bytes: Uint8Array): protobuf.Message };
};

let root: protobuf.Root | null | undefined;

/**
 * The types buf compiled from proto/ (gen/descriptor-set.ts, the same bytes
 * that reflection serves), loaded once; null if they cannot be read (the
 * checks then fall back to field keys).
 */
function protoRoot(): protobuf.Root | null {
  if (root !== undefined) return root;
  try {
    const set = FileDescriptorSet.decode(Buffer.from(fileDescriptorSetBase64, "base64"));
    const loaded = (protobuf.Root as unknown as { fromDescriptor(set: protobuf.Message): protobuf.Root }).fromDescriptor(set);
    loaded.resolveAll();
    root = loaded;
  } catch {
    root = null;
  }
  return root;
}

/**
 * The request message type of the rpc at `path` ("/parley.chat.v1.ChatService/Send"),
 * or undefined when proto/ does not describe it.
 */
export function requestTypeOf(path: string): protobuf.Type | undefined {
  const match = /^\/(.+)\/([^/]+)$/.exec(path);
  const loaded = protoRoot();
  if (!match || !loaded) return undefined;
  try {
    return loaded.lookupService(match[1]).methods[match[2]]?.resolvedRequestType ?? undefined;
  } catch {
    return undefined;
  }
}

/** The property ts-proto gives a proto field: `client_msg_id` → `clientMsgId`; a name without `_` is kept. */
function keyOf(name: string): string {
  return name.includes("_") ? name.replace(/_+([a-z0-9])/g, (_m, c: string) => c.toUpperCase()) : name;
}

type Fields = Record<string, unknown>;
const isObject = (v: unknown): v is Fields =>
  typeof v === "object" && v !== null && !(v instanceof Date) && !(v instanceof Uint8Array) && !Array.isArray(v);

/** A field that a check refused, and why, in words a client can act on. */
export interface FieldProblem {
  field: string;
  reason: string;
}

/**
 * The first string in `value` (any depth: nested messages, repeated fields,
 * map keys and values) that holds U+0000, named by its proto path
 * ("send.to.username"). `exempt` lists full field names
 * ("parley.chat.v1.SendRequest.body") that the domain checks itself.
 */
export function findNul(type: protobuf.Type | undefined, value: unknown, exempt: ReadonlySet<string> = new Set()): FieldProblem | undefined {
  const field = type ? nulInMessage(type, value, exempt, "") : nulInPlain(value, "");
  return field === undefined ? undefined : { field, reason: `${field} must not contain U+0000` };
}

function nulInMessage(type: protobuf.Type, value: unknown, exempt: ReadonlySet<string>, path: string): string | undefined {
  if (!isObject(value)) return undefined;
  for (const field of type.fieldsArray) {
    const v = value[keyOf(field.name)] ?? value[field.name];
    if (v === undefined || v === null || exempt.has(`${type.fullName.slice(1)}.${field.name}`)) continue;
    const name = path ? `${path}.${field.name}` : field.name;
    let items: unknown[];
    // A map: ts-proto holds it as an object. (protobufjs reads a map from a descriptor as a repeated entry message.)
    if (field.map || (field.repeated && isObject(v))) {
      if (!isObject(v)) continue;
      if (Object.keys(v).some(hasNul)) return `${name} (a key)`;
      items = Object.values(v);
    } else {
      items = Array.isArray(v) ? v : [v];
    }
    const nested = field.resolvedType instanceof protobuf.Type ? field.resolvedType : undefined;
    for (const item of items) {
      if (typeof item === "string" && hasNul(item)) return name;
      const found = nested ? nulInMessage(nested, item, exempt, name) : undefined;
      if (found !== undefined) return found;
    }
  }
  return undefined;
}

/** Without a descriptor: every string reachable from `value`, named by its keys in snake_case. */
function nulInPlain(value: unknown, path: string): string | undefined {
  if (typeof value === "string") return hasNul(value) ? path || "request" : undefined;
  const entries = Array.isArray(value) ? value.map((v) => ["", v] as const) : isObject(value) ? Object.entries(value) : [];
  for (const [key, item] of entries) {
    const snake = key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
    const found = nulInPlain(item, key === "" ? path : path ? `${path}.${snake}` : snake);
    if (found !== undefined) return found;
  }
  return undefined;
}

/**
 * Why `bytes` did not decode, naming the field when it is a 64-bit integer
 * beyond ±(2^53 - 1), which a JavaScript number cannot hold exactly: protobufjs
 * decodes those as Long, so it finds the field ts-proto's decoder only throws at.
 */
export function findOutOfRange(type: protobuf.Type | undefined, bytes: Uint8Array): FieldProblem | undefined {
  if (!type) return undefined;
  let decoded: protobuf.Message;
  try {
    decoded = type.decode(bytes);
  } catch {
    return undefined;
  }
  const field = longInMessage(type, decoded, "");
  return field === undefined ? undefined : { field, reason: `${field} is out of range: at most 2^53 - 1 either way` };
}

function longInMessage(type: protobuf.Type, value: unknown, path: string): string | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  for (const field of type.fieldsArray) {
    const v = (value as Fields)[field.name];
    if (v === undefined || v === null) continue;
    const name = path ? `${path}.${field.name}` : field.name;
    const items = field.map ? Object.values(v as Fields) : Array.isArray(v) ? v : [v];
    const nested = field.resolvedType instanceof protobuf.Type ? field.resolvedType : undefined;
    for (const item of items) {
      if (field.long && !Number.isSafeInteger(Number(String(item)))) return name;
      const found = nested ? longInMessage(nested, item, name) : undefined;
      if (found !== undefined) return found;
    }
  }
  return undefined;
}

/**
 * The request's own `client_msg_id` (at its top level or in a message field,
 * as in a Connect `send` frame), when it has one free of U+0000: a refused send
 * is still answered by its id.
 */
export function findClientMsgId(type: protobuf.Type | undefined, value: unknown): string | undefined {
  if (!type || !isObject(value)) return undefined;
  const own = value.clientMsgId;
  if (type.fields.client_msg_id && typeof own === "string") return hasNul(own) ? undefined : own;
  for (const field of type.fieldsArray) {
    const nested = field.resolvedType;
    if (field.repeated || field.map || !(nested instanceof protobuf.Type) || !nested.fields.client_msg_id) continue;
    const id = (value[keyOf(field.name)] as Fields | undefined)?.clientMsgId;
    if (typeof id === "string") return hasNul(id) ? undefined : id;
  }
  return undefined;
}
