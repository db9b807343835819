import { createRequire } from "node:module";
import type { PackageDefinition } from "@grpc/proto-loader";

// protobufjs's descriptor extension is CommonJS only.
const { FileDescriptorProto } = createRequire(import.meta.url)("protobufjs/ext/descriptor") as {
  FileDescriptorProto: {
    decode(bytes: Uint8Array): FileDescriptor;
    encode(file: FileDescriptor): { finish(): Uint8Array };
  };
};

interface FieldDescriptor {
  name: string;
  typeName?: string;
}
interface MessageDescriptor {
  name: string;
  field?: FieldDescriptor[];
  nestedType?: MessageDescriptor[];
  options?: { mapEntry?: boolean };
}
interface FileDescriptor {
  package?: string;
  messageType?: MessageDescriptor[];
}

/** protoc's name for a map field's entry message: `scalerMetadata` → `ScalerMetadataEntry`. */
function mapEntryName(field: string): string {
  return `${field.replace(/(^|_)(.)/g, (_, _sep: string, c: string) => c.toUpperCase())}Entry`;
}

function fixMessage(message: MessageDescriptor, scope: string): void {
  const fullName = `${scope}.${message.name}`;
  const entries = new Map((message.nestedType ?? []).filter((n) => n.options?.mapEntry).map((n) => [n.name, n]));
  for (const field of message.field ?? []) {
    const entry = field.typeName === undefined ? undefined : entries.get(field.typeName);
    if (entry === undefined) continue;
    entry.name = mapEntryName(field.name);
    field.typeName = `${fullName}.${entry.name}`;
  }
  for (const nested of message.nestedType ?? []) fixMessage(nested, fullName);
}

/**
 * protobufjs describes a map field's entry message as `ScalerMetadata`, not
 * `ScalerMetadataEntry` as protoc does, and Go's protobuf (which grpcurl uses)
 * rejects such a file ("incorrect implicit map entry name"). This rewrites the
 * descriptors that server reflection hands out so that they match protoc's.
 */
export function withProtocMapEntries(definition: PackageDefinition): PackageDefinition {
  const fixed: PackageDefinition = {};
  for (const [name, value] of Object.entries(definition)) {
    const protos = (value as { fileDescriptorProtos?: Buffer[] }).fileDescriptorProtos;
    if (!Array.isArray(protos)) {
      fixed[name] = value;
      continue;
    }
    const fileDescriptorProtos = protos.map((bytes) => {
      const file = FileDescriptorProto.decode(bytes);
      for (const message of file.messageType ?? []) fixMessage(message, file.package ? `.${file.package}` : "");
      return Buffer.from(FileDescriptorProto.encode(file).finish());
    });
    fixed[name] = { ...value, fileDescriptorProtos } as PackageDefinition[string];
  }
  return fixed;
}
