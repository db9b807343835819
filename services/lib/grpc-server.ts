import { Server, ServerCredentials, type ServerInterceptor, type ServiceDefinition, type UntypedServiceImplementation } from "@grpc/grpc-js";
import type { PackageDefinition } from "@grpc/proto-loader";
import { ReflectionService } from "@grpc/reflection";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import { HealthImplementation } from "grpc-health-check";
import { fileDescriptorSetBase64 } from "../../gen/descriptor-set.js";
import type { Logger } from "./logger.js";

const HEALTH_SERVICE = "grpc.health.v1.Health";

/** One gRPC service this process hosts, under its full protobuf name. */
export interface HostedService {
  fullName: string;
  definition: ServiceDefinition;
  implementation: UntypedServiceImplementation;
}

export interface GrpcServerOptions {
  port: number;
  services: HostedService[];
  log: Logger;
  /** Connections are recycled after this, so that pods added by a scale-out receive streams. */
  maxConnectionAgeMs: number;
  /** After the GOAWAY, open streams get this long before they are cut. */
  maxConnectionAgeGraceMs: number;
  /** Largest request we accept; a body is at most 4 KiB, so this only stops abuse. */
  maxReceiveBytes?: number;
  /** Run around every call, health and reflection included, first one outermost (the metrics: lib/grpc-metrics.ts). Default none. */
  interceptors?: ServerInterceptor[];
}

export interface GrpcServer {
  readonly port: number;
  /** Health goes NOT_SERVING for every hosted service; the first step of a drain. */
  markNotServing(): void;
  /** Waits for calls to end, up to `timeoutMs`, then cuts whatever is left. */
  close(timeoutMs: number): Promise<void>;
}

/** Listens on `port` with health and reflection next to `services`. */
export async function startGrpcServer(options: GrpcServerOptions): Promise<GrpcServer> {
  const { log } = options;
  const server = new Server({
    "grpc.max_connection_age_ms": options.maxConnectionAgeMs,
    "grpc.max_connection_age_grace_ms": options.maxConnectionAgeGraceMs,
    "grpc.keepalive_time_ms": 60_000,
    "grpc.keepalive_timeout_ms": 20_000,
    "grpc.http2.min_ping_interval_without_data_ms": 5_000,
    "grpc.max_receive_message_length": options.maxReceiveBytes ?? 64 * 1024,
    interceptors: options.interceptors ?? [],
  });

  const names = options.services.map((s) => s.fullName);
  const health = new HealthImplementation(Object.fromEntries(["", ...names].map((n) => [n, "SERVING" as const])));
  health.addToServer(server);
  new ReflectionService(reflectedFiles(), { services: [...names, HEALTH_SERVICE] }).addToServer(server);
  for (const service of options.services) server.addService(service.definition, service.implementation);

  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`0.0.0.0:${options.port}`, ServerCredentials.createInsecure(), (err, bound) => (err ? reject(err) : resolve(bound))),
  );
  log.info({ port, services: names }, "gRPC server listening");

  return {
    port,
    markNotServing() {
      for (const name of ["", ...names]) health.setStatus(name, "NOT_SERVING");
    },
    close(timeoutMs) {
      return new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          log.warn("gRPC calls still open at the deadline; cutting them");
          server.forceShutdown();
          resolve();
        }, timeoutMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    },
  };
}

/**
 * The FileDescriptorProtos that buf compiled from proto/ (and grpc.health.v1),
 * as gen/descriptor-set.ts holds them, shaped as the package definition that
 * @grpc/reflection reads. It reads only `fileDescriptorProtos` and indexes the
 * files by their own names and symbols, so it serves buf's file names and
 * dependency lists. It re-encodes each file with protobufjs, which gives back
 * buf's bytes exactly; test/reflection.test.ts fails if that ever changes.
 * (proto-loader's own definitions would not do: protobufjs regroups files by
 * package, invents their names and drops their imports.)
 */
function reflectedFiles(): PackageDefinition {
  const set = new BinaryReader(Buffer.from(fileDescriptorSetBase64, "base64"));
  const files: Buffer[] = [];
  while (set.pos < set.len) {
    const [field, wireType] = set.tag();
    // FileDescriptorSet is `repeated FileDescriptorProto file = 1`.
    if (field === 1 && wireType === WireType.LengthDelimited) files.push(Buffer.from(set.bytes()));
    else set.skip(wireType, field);
  }
  // One entry carries every file; @grpc/reflection ignores the entry's format and type.
  return { "buf build": { format: "Protocol Buffer 3 EnumDescriptorProto", type: {}, fileDescriptorProtos: files } };
}
