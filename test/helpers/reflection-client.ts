// A server-reflection client that trusts nothing but what it is served, as
// grpcurl does, on a strict runtime that is not protobufjs: @bufbuild/protobuf.
// Its file registry throws on an import that is not served, a type that no
// import defines, or a malformed map entry, as Go's protobuf and upb do.
import { execFileSync } from "node:child_process";
import { createRequire } from "node:module";
import { dirname } from "node:path";
import { Client, credentials, Metadata, type ClientDuplexStream, type ServiceError } from "@grpc/grpc-js";
import {
  create,
  createFileRegistry,
  fromBinary,
  fromJson,
  toBinary,
  toJson,
  type DescMessage,
  type DescMethod,
  type FileRegistry,
  type JsonValue,
  type Message,
} from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, FileDescriptorSetSchema, type FileDescriptorProto } from "@bufbuild/protobuf/wkt";

const require = createRequire(import.meta.url);
const BUF = require.resolve("@bufbuild/buf/bin/buf");

/** `buf build --as-file-descriptor-set` of `root` (limited to `paths`, if given), as raw bytes per file name. */
export function bufBuild(root: string, paths: string[] = []): Map<string, Uint8Array> {
  const args = [BUF, "build", root, ...paths.flatMap((p) => ["--path", p]), "--as-file-descriptor-set", "-o", "-"];
  const set = fromBinary(FileDescriptorSetSchema, execFileSync(process.execPath, args, { maxBuffer: 64 * 1024 * 1024 }));
  return new Map(set.file.map((file) => [file.name, toBinary(FileDescriptorProtoSchema, file)]));
}

/** The reflection protocol's own files (v1 and v1alpha), compiled by buf from @grpc/reflection's copies. */
export function reflectionProtocolFiles(): Map<string, Uint8Array> {
  const root = `${dirname(require.resolve("@grpc/reflection/package.json"))}/build/proto`;
  return bufBuild(root, [`${root}/grpc/reflection`]);
}

function reflectionProtocol(): FileRegistry {
  return createFileRegistry(create(FileDescriptorSetSchema, { file: [...reflectionProtocolFiles().values()].map(decodeFile) }));
}

export function decodeFile(bytes: Uint8Array): FileDescriptorProto {
  return fromBinary(FileDescriptorProtoSchema, bytes);
}

export type ReflectionVersion = "v1" | "v1alpha";

/** What one reflection answer carried: files, service names, or the error the server reported in-band. */
export interface ReflectionAnswer {
  files: Uint8Array[];
  services: string[];
  error?: { code: number; message: string };
}

/** Reflection requests over one ServerReflectionInfo stream; answers come back in request order. */
export class ReflectionClient {
  private readonly client: Client;
  private readonly call: ClientDuplexStream<Message, Message>;
  private readonly waiting: { resolve(answer: ReflectionAnswer): void; reject(err: Error): void }[] = [];
  private readonly request: DescMessage;

  constructor(address: string, version: ReflectionVersion = "v1") {
    const protocol = reflectionProtocol();
    const pkg = `grpc.reflection.${version}`;
    this.request = protocol.getMessage(`${pkg}.ServerReflectionRequest`)!;
    const response = protocol.getMessage(`${pkg}.ServerReflectionResponse`)!;
    this.client = new Client(address, credentials.createInsecure());
    this.call = this.client.makeBidiStreamRequest(
      `/${pkg}.ServerReflection/ServerReflectionInfo`,
      (m: Message) => Buffer.from(toBinary(this.request, m)),
      (b: Buffer) => fromBinary(response, b),
    );
    this.call.on("data", (answer: any) => this.waiting.shift()?.resolve(readAnswer(answer)));
    this.call.on("error", (err: Error) => {
      for (const w of this.waiting.splice(0)) w.reject(err);
    });
  }

  /** `json` is a ServerReflectionRequest in proto JSON, e.g. `{ fileByFilename: "a.proto" }`. */
  ask(json: JsonValue): Promise<ReflectionAnswer> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.call.write(fromJson(this.request, json));
    });
  }

  /** grpcurl's discovery: list services, fetch the file of each, then every import by file name until none is missing. */
  async discover(): Promise<{ services: string[]; files: Map<string, Uint8Array>; registry: FileRegistry }> {
    const { services } = await this.ask({ listServices: "" });
    const files = new Map<string, Uint8Array>();
    const keep = (answer: ReflectionAnswer, asked: string) => {
      if (answer.error) throw new Error(`reflection refused ${asked}: ${answer.error.code} ${answer.error.message}`);
      for (const bytes of answer.files) {
        const { name } = decodeFile(bytes);
        if (!files.has(name)) files.set(name, bytes);
      }
    };
    for (const service of services) keep(await this.ask({ fileContainingSymbol: service }), service);
    for (let missing = imports(files); missing.length > 0; missing = imports(files)) {
      for (const name of missing) keep(await this.ask({ fileByFilename: name }), name);
    }
    const registry = createFileRegistry(create(FileDescriptorSetSchema, { file: importsFirst(files) }));
    return { services, files, registry };
  }

  close(): void {
    this.call.end();
    this.client.close();
  }
}

function imports(files: Map<string, Uint8Array>): string[] {
  const names = [...files.values()].flatMap((bytes) => decodeFile(bytes).dependency);
  return [...new Set(names)].filter((name) => !files.has(name));
}

/**
 * The files with every import before its importers, as a FileDescriptorSet
 * must list them. (@bufbuild/protobuf's resolver form of createFileRegistry
 * orders a shared import wrongly, so the order is made here.)
 */
function importsFirst(files: Map<string, Uint8Array>): FileDescriptorProto[] {
  const ordered: FileDescriptorProto[] = [];
  const placed = new Set<string>();
  const place = (name: string) => {
    if (placed.has(name)) return;
    placed.add(name);
    const file = decodeFile(files.get(name)!);
    for (const dependency of file.dependency) place(dependency);
    ordered.push(file);
  };
  for (const name of files.keys()) place(name);
  return ordered;
}

function readAnswer(answer: any): ReflectionAnswer {
  const { case: kind, value } = answer.messageResponse;
  return {
    files: kind === "fileDescriptorResponse" ? value.fileDescriptorProto : [],
    services: kind === "listServicesResponse" ? value.service.map((s: { name: string }) => s.name) : [],
    error: kind === "errorResponse" ? { code: value.errorCode, message: value.errorMessage } : undefined,
  };
}

/** Calls rpcs with types taken only from `registry`, in proto JSON as grpcurl's `-d` takes them. */
export class DynamicClient {
  private readonly client: Client;

  constructor(address: string) {
    this.client = new Client(address, credentials.createInsecure());
  }

  unary(method: DescMethod, json: JsonValue, token?: string): Promise<any> {
    return new Promise((resolve, reject) =>
      this.client.makeUnaryRequest(
        path(method),
        serializer(method.input),
        deserializer(method.output),
        fromJson(method.input, json),
        metadata(token),
        (err: ServiceError | null, res?: Message) => (err ? reject(err) : resolve(asJson(method.output, res!))),
      ),
    );
  }

  /** A server stream whose messages are emitted as proto JSON. */
  serverStream(method: DescMethod, json: JsonValue, token?: string) {
    return this.client.makeServerStreamRequest(
      path(method),
      serializer(method.input),
      (b: Buffer) => asJson(method.output, fromBinary(method.output, b)),
      fromJson(method.input, json),
      metadata(token),
    );
  }

  /** A bidi stream that takes and emits proto JSON. */
  bidiStream(method: DescMethod, token?: string) {
    return this.client.makeBidiStreamRequest(
      path(method),
      (json: JsonValue) => Buffer.from(toBinary(method.input, fromJson(method.input, json))),
      (b: Buffer) => asJson(method.output, fromBinary(method.output, b)),
      metadata(token),
    );
  }

  close(): void {
    this.client.close();
  }
}

function path(method: DescMethod): string {
  return `/${method.parent.typeName}/${method.name}`;
}

function serializer(desc: DescMessage) {
  return (m: Message) => Buffer.from(toBinary(desc, m));
}

function deserializer(desc: DescMessage) {
  return (b: Buffer) => fromBinary(desc, b);
}

/** Proto JSON with zero values spelled out, so `false` and `0` can be asserted. */
function asJson(desc: DescMessage, message: Message): any {
  return toJson(desc, message, { alwaysEmitImplicit: true });
}

function metadata(token?: string): Metadata {
  const m = new Metadata();
  if (token) m.set("authorization", `Bearer ${token}`);
  return m;
}
