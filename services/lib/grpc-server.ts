import { fileURLToPath } from "node:url";
import {
  Server,
  ServerCredentials,
  type ServiceDefinition,
  type UntypedServiceImplementation,
} from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { ReflectionService } from "@grpc/reflection";
import { HealthImplementation, protoPath as healthProtoPath } from "grpc-health-check";
import { withProtocMapEntries } from "./descriptors.js";
import type { Logger } from "./logger.js";

const PROTO_ROOT = fileURLToPath(new URL("../../proto", import.meta.url));
const PROTO_FILES = ["parley/auth/v1/auth.proto", "parley/chat/v1/chat.proto", "externalscaler/externalscaler.proto"];
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
  });

  const names = options.services.map((s) => s.fullName);
  const health = new HealthImplementation(Object.fromEntries(["", ...names].map((n) => [n, "SERVING" as const])));
  health.addToServer(server);
  // keepCase: reflection must describe fields as the .proto names them (client_msg_id), as grpcurl expects.
  const protos = loadSync(PROTO_FILES, { keepCase: true, includeDirs: [PROTO_ROOT, dirOf(healthProtoPath)] });
  const healthProto = loadSync("health.proto", { keepCase: true, includeDirs: [dirOf(healthProtoPath)] });
  new ReflectionService(withProtocMapEntries({ ...protos, ...healthProto }), { services: [...names, HEALTH_SERVICE] }).addToServer(
    server,
  );
  for (const service of options.services) server.addService(service.definition, service.implementation);

  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`0.0.0.0:${options.port}`, ServerCredentials.createInsecure(), (err, bound) =>
      err ? reject(err) : resolve(bound),
    ),
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

function dirOf(file: string): string {
  return file.slice(0, file.lastIndexOf("/"));
}
