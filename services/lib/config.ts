import { hostname } from "node:os";
import { type Env, EnvError, EnvReader } from "./env.js";
import { LOG_FORMATS, type LogFormat } from "./logger.js";

/** The services one process can host. */
const SERVICE_NAMES = ["auth", "chat", "scaler"] as const;
type ServiceName = (typeof SERVICE_NAMES)[number];

/** pino's levels, for LOG_LEVEL here and in the controller's settings. */
export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Everything a Parley process reads from its environment, validated. */
export interface Config {
  /** GRPC_PORT: one port for every hosted service; 0 picks a free one. Default 50051. */
  grpcPort: number;
  /**
   * WEB_PORT: where the embedded web server serves the browser app and
   * gRPC-web (services/web/web-server.ts); 0 picks a free one. `off` (any
   * case) runs no web server: pods behind Envoy that host no chat, and
   * tests that need no browser. Default 8080, so that `npm start` and a
   * browser at http://localhost:8080 give a working chat.
   */
  webPort: number | undefined;
  /**
   * METRICS_PORT: where Prometheus scrapes `/metrics` over plain HTTP
   * (lib/metrics-server.ts). 0 turns the metrics server off (unlike
   * GRPC_PORT and WEB_PORT, where 0 picks a free port: design.md, "Browsers
   * and operators"). Default 9464, the port OpenTelemetry's Prometheus
   * exporter registered (https://github.com/prometheus/prometheus/wiki/Default-port-allocations).
   */
  metricsPort: number | undefined;
  /** SERVICES: comma list of auth, chat, scaler. Default all three. */
  services: ServiceName[];
  /** DATABASE_URL: Postgres URL; undefined means embedded PGlite. */
  databaseUrl: string | undefined;
  /** PARLEY_DATA_DIR: PGlite's folder. Default ./.parley */
  dataDir: string;
  /** REDIS_URL: Redis URL; undefined means the in-memory bus (one process only). */
  redisUrl: string | undefined;
  /** POD_NAME: this process's identity in presence and logs. Default the hostname. */
  podName: string;
  /** LOG_LEVEL: pino level. Default info. */
  logLevel: LogLevel;
  /** LOG_FORMAT: json, pretty, or auto (pretty on a terminal, else JSON). Default auto. */
  logFormat: LogFormat;
  /** SESSION_TTL_SECONDS: how long a token lives. Default 7 days. */
  sessionTtlSeconds: number;
  /** RATE_LIMIT_PER_SECOND: sustained sends per user, across the cluster when Redis is set (see rate-limit-flexible.ts). Default 20. */
  rateLimitPerSecond: number;
  /** RATE_LIMIT_BURST: how many sends a rested user may make at once. Default 50. */
  rateLimitBurst: number;
  /** STREAM_QUEUE_LIMIT: frames queued for one slow stream before it is ended. Default 1000. */
  streamQueueLimit: number;
  /**
   * DATABASE_STATEMENT_TIMEOUT_SECONDS: Postgres cancels a statement that runs
   * (or waits for a lock) longer than this, so a send's outcome is known
   * (rolled back, answered UNAVAILABLE) instead of committing after its
   * caller gave up. The client gives up 2 s later still. Default 5.
   */
  databaseStatementTimeoutSeconds: number;
  /** SHUTDOWN_TIMEOUT_SECONDS: the whole drain must fit in this. Default 20. */
  shutdownTimeoutSeconds: number;
  /** GRPC_MAX_CONNECTION_AGE_SECONDS: connections are recycled after this, so a scale-out rebalances. Default 900. */
  maxConnectionAgeSeconds: number;
  /** GRPC_MAX_CONNECTION_AGE_GRACE_SECONDS: streams get this long to move after a GOAWAY. Default 30. */
  maxConnectionAgeGraceSeconds: number;
  /**
   * PRESENCE_TTL_SECONDS: a pod that stops heartbeating stops counting after
   * this; it heartbeats every `presenceHeartbeatMs` of it. 3 to 20, default 15,
   * so that `presenceBoundMs` stays under 30 s (design.md, guarantee 5).
   */
  presenceTtlSeconds: number;
  /**
   * PRESENCE_GRACE_SECONDS: a user whose last stream closed normally is
   * announced offline this long after, unless they reconnected meanwhile (a
   * drain, a recycled connection, a quick reconnect is no change). 1 to 15, default 5.
   */
  presenceGraceSeconds: number;
}

/** How often a pod renews its presence lease, reaps lapsed pods and reconciles announcements: a third of the TTL, at least 1 s. */
export function presenceHeartbeatMs(config: Pick<Config, "presenceTtlSeconds">): number {
  return Math.max(1000, Math.floor((config.presenceTtlSeconds * 1000) / 3));
}

/**
 * The longest a change of a user's presence waits before it is announced, in
 * ms. A killed pod's lease lapses at most a TTL after its last heartbeat (so
 * after its death) and the next heartbeat of any live pod reaps it; a normal
 * close waits out the grace, and if its pod dies meanwhile another pod's next
 * heartbeat announces it. So max(TTL, grace) plus one heartbeat: at most
 * 20 s + 6.7 s with the allowed ranges, under the design's 30 s with room for
 * a slow Redis command (2 s timeout) and the publish.
 */
export function presenceBoundMs(config: Pick<Config, "presenceTtlSeconds" | "presenceGraceSeconds">): number {
  return Math.max(config.presenceTtlSeconds, config.presenceGraceSeconds) * 1000 + presenceHeartbeatMs(config);
}

/** A Parley process's environment had problems; `problems` lists every one, each naming its variable. */
export class ConfigError extends EnvError {
  override name = "ConfigError";
}

/**
 * Reads and validates the whole configuration at once, so that a bad
 * deployment reports every wrong variable in one go. Pure: pass `env` in tests.
 */
export function loadConfig(env: Env = process.env): Config {
  const read = new EnvReader(env);
  const config: Config = {
    grpcPort: read.int("GRPC_PORT", 50051, 0, 65535),
    webPort: read.raw("WEB_PORT")?.toLowerCase() === "off" ? undefined : read.int("WEB_PORT", 8080, 0, 65535),
    metricsPort: read.int("METRICS_PORT", 9464, 0, 65535) || undefined,
    services: read.list("SERVICES", SERVICE_NAMES, SERVICE_NAMES),
    databaseUrl: read.url("DATABASE_URL", ["postgres:", "postgresql:"]),
    dataDir: read.string("PARLEY_DATA_DIR", "./.parley"),
    redisUrl: read.url("REDIS_URL", ["redis:", "rediss:"]),
    podName: read.string("POD_NAME", hostname()),
    logLevel: read.oneOf("LOG_LEVEL", LOG_LEVELS, "info"),
    logFormat: read.oneOf("LOG_FORMAT", LOG_FORMATS, "auto"),
    sessionTtlSeconds: read.int("SESSION_TTL_SECONDS", 7 * 24 * 3600, 60, 365 * 24 * 3600),
    rateLimitPerSecond: read.int("RATE_LIMIT_PER_SECOND", 20, 1, 1_000_000),
    rateLimitBurst: read.int("RATE_LIMIT_BURST", 50, 1, 1_000_000),
    streamQueueLimit: read.int("STREAM_QUEUE_LIMIT", 1000, 10, 1_000_000),
    databaseStatementTimeoutSeconds: read.int("DATABASE_STATEMENT_TIMEOUT_SECONDS", 5, 1, 600),
    shutdownTimeoutSeconds: read.int("SHUTDOWN_TIMEOUT_SECONDS", 20, 1, 600),
    maxConnectionAgeSeconds: read.int("GRPC_MAX_CONNECTION_AGE_SECONDS", 900, 1, 86_400 * 30),
    maxConnectionAgeGraceSeconds: read.int("GRPC_MAX_CONNECTION_AGE_GRACE_SECONDS", 30, 1, 3600),
    presenceTtlSeconds: read.int("PRESENCE_TTL_SECONDS", 15, 3, 20),
    presenceGraceSeconds: read.int("PRESENCE_GRACE_SECONDS", 5, 1, 15),
  };
  read.check((problems) => new ConfigError(problems));
  return config;
}
