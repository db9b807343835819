import { hostname } from "node:os";

/** The services one process can host. */
export const SERVICE_NAMES = ["auth", "chat", "scaler"] as const;
export type ServiceName = (typeof SERVICE_NAMES)[number];

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Everything a Parley process reads from its environment, validated. */
export interface Config {
  /** GRPC_PORT: one port for every hosted service; 0 picks a free one. Default 50051. */
  grpcPort: number;
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
  /** SESSION_TTL_SECONDS: how long a token lives. Default 7 days. */
  sessionTtlSeconds: number;
  /** RATE_LIMIT_PER_SECOND: sustained sends (and typing frames) per user and pod. Default 20. */
  rateLimitPerSecond: number;
  /** RATE_LIMIT_BURST: how many sends a user may make at once. Default 50. */
  rateLimitBurst: number;
  /** STREAM_QUEUE_LIMIT: frames queued for one slow stream before it is ended. Default 1000. */
  streamQueueLimit: number;
  /** SHUTDOWN_TIMEOUT_SECONDS: the whole drain must fit in this. Default 20. */
  shutdownTimeoutSeconds: number;
  /** GRPC_MAX_CONNECTION_AGE_SECONDS: connections are recycled after this, so a scale-out rebalances. Default 900. */
  maxConnectionAgeSeconds: number;
  /** GRPC_MAX_CONNECTION_AGE_GRACE_SECONDS: streams get this long to move after a GOAWAY. Default 30. */
  maxConnectionAgeGraceSeconds: number;
  /** PRESENCE_TTL_SECONDS: a pod that stops heartbeating stops counting after this. Default 15. */
  presenceTtlSeconds: number;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join("\n  - ")}`);
    this.name = "ConfigError";
  }
}

type Env = Record<string, string | undefined>;

/**
 * Reads and validates the whole configuration at once, so that a bad
 * deployment reports every wrong variable in one go. Pure: pass `env` in tests.
 */
export function loadConfig(env: Env = process.env): Config {
  const problems: string[] = [];
  const read = new Reader(env, problems);
  const config: Config = {
    grpcPort: read.int("GRPC_PORT", 50051, 0, 65535),
    services: read.services("SERVICES"),
    databaseUrl: read.url("DATABASE_URL", ["postgres:", "postgresql:"]),
    dataDir: read.string("PARLEY_DATA_DIR", "./.parley"),
    redisUrl: read.url("REDIS_URL", ["redis:", "rediss:"]),
    podName: read.string("POD_NAME", hostname()),
    logLevel: read.oneOf("LOG_LEVEL", LOG_LEVELS, "info"),
    sessionTtlSeconds: read.int("SESSION_TTL_SECONDS", 7 * 24 * 3600, 60, 365 * 24 * 3600),
    rateLimitPerSecond: read.int("RATE_LIMIT_PER_SECOND", 20, 1, 1_000_000),
    rateLimitBurst: read.int("RATE_LIMIT_BURST", 50, 1, 1_000_000),
    streamQueueLimit: read.int("STREAM_QUEUE_LIMIT", 1000, 10, 1_000_000),
    shutdownTimeoutSeconds: read.int("SHUTDOWN_TIMEOUT_SECONDS", 20, 1, 600),
    maxConnectionAgeSeconds: read.int("GRPC_MAX_CONNECTION_AGE_SECONDS", 900, 1, 86_400 * 30),
    maxConnectionAgeGraceSeconds: read.int("GRPC_MAX_CONNECTION_AGE_GRACE_SECONDS", 30, 1, 3600),
    presenceTtlSeconds: read.int("PRESENCE_TTL_SECONDS", 15, 3, 30),
  };
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

class Reader {
  constructor(
    private readonly env: Env,
    private readonly problems: string[],
  ) {}

  private raw(name: string): string | undefined {
    const value = this.env[name]?.trim();
    return value === "" ? undefined : value;
  }

  string(name: string, fallback: string): string {
    return this.raw(name) ?? fallback;
  }

  int(name: string, fallback: number, min: number, max: number): number {
    const value = this.raw(name);
    if (value === undefined) return fallback;
    const parsed = Number(value);
    if (!/^-?\d+$/.test(value) || parsed < min || parsed > max) {
      this.problems.push(`${name} must be an integer from ${min} to ${max}, got "${value}"`);
      return fallback;
    }
    return parsed;
  }

  oneOf<T extends string>(name: string, allowed: readonly T[], fallback: T): T {
    const value = this.raw(name);
    if (value === undefined) return fallback;
    if (!(allowed as readonly string[]).includes(value)) {
      this.problems.push(`${name} must be one of ${allowed.join(", ")}, got "${value}"`);
      return fallback;
    }
    return value as T;
  }

  url(name: string, protocols: string[]): string | undefined {
    const value = this.raw(name);
    if (value === undefined) return undefined;
    let protocol: string | undefined;
    try {
      protocol = new URL(value).protocol;
    } catch {
      protocol = undefined;
    }
    if (protocol === undefined || !protocols.includes(protocol)) {
      this.problems.push(`${name} must be a ${protocols.map((p) => `${p}//`).join(" or ")} URL`);
      return undefined;
    }
    return value;
  }

  services(name: string): ServiceName[] {
    const value = this.raw(name);
    if (value === undefined) return [...SERVICE_NAMES];
    const names = value.split(",").map((s) => s.trim()).filter(Boolean);
    const unknown = names.filter((s) => !(SERVICE_NAMES as readonly string[]).includes(s));
    if (names.length === 0 || unknown.length > 0) {
      this.problems.push(`${name} must be a comma list of ${SERVICE_NAMES.join(", ")}, got "${value}"`);
      return [...SERVICE_NAMES];
    }
    return [...new Set(names)] as ServiceName[];
  }
}
