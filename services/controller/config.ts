import { readFileSync } from "node:fs";
import { hostname } from "node:os";

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Where a pod finds its own namespace; absent outside a cluster. */
export const SERVICE_ACCOUNT_NAMESPACE_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

/** Everything the bundled controller reads from its environment, validated. */
export interface ControllerConfig {
  /** SCALER_ADDRESS: host:port of the externalscaler.ExternalScaler gRPC service. Required. */
  scalerAddress: string;
  /** TARGET_DEPLOYMENT: the Deployment whose scale subresource is patched. Default chat. */
  targetDeployment: string;
  /** TARGET_NAMESPACE: its namespace. Default the controller's own namespace, else default. */
  targetNamespace: string;
  /** MIN_REPLICAS: the floor, also for 0 users. Default 1. */
  minReplicas: number;
  /** MAX_REPLICAS: the ceiling. Default 10. */
  maxReplicas: number;
  /** USERS_PER_REPLICA: sent to the scaler as scalerMetadata.usersPerReplica. Default 3. */
  usersPerReplica: number;
  /** SCALE_DOWN_STABILIZATION_SECONDS: scale down only to the highest desire over this window. Default 60. */
  scaleDownStabilizationSeconds: number;
  /** SYNC_INTERVAL_SECONDS: one read-decide-write tick this often. Default 5. */
  syncIntervalSeconds: number;
  /** DRY_RUN: log what would change, patch nothing and emit no Event. Default false. */
  dryRun: boolean;
  /** LOG_LEVEL: pino level. Default info. */
  logLevel: LogLevel;
  /** POD_NAME: this controller's identity in logs and as the Events' reportingInstance. Default the hostname. */
  podName: string;
}

export class ControllerConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join("\n  - ")}`);
    this.name = "ControllerConfigError";
  }
}

type Env = Record<string, string | undefined>;

/** A Kubernetes object name (DNS-1123 subdomain) and a namespace (DNS-1123 label). */
const SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL = /^(?=.{1,63}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
/** host:port, [ipv6]:port, or a grpc-js target such as dns:///host:port. */
const ADDRESS = /^(([a-z]+:)?\/\/\/?)?(\[[0-9a-f:.]+\]|[A-Za-z0-9_.-]+):\d{1,5}$/;

/**
 * The namespace this pod runs in, from its service account mount; undefined
 * outside a cluster. Kept apart from `loadControllerConfig` so that stays pure.
 */
export function readOwnNamespace(file = SERVICE_ACCOUNT_NAMESPACE_FILE): string | undefined {
  try {
    const value = readFileSync(file, "utf8").trim();
    return value === "" ? undefined : value;
  } catch {
    return undefined;
  }
}

/**
 * Reads and validates the controller's whole configuration at once, so a bad
 * manifest reports every wrong variable in one go. Pure: pass `env` and the
 * namespace `readOwnNamespace()` found (if any).
 */
export function loadControllerConfig(env: Env = process.env, ownNamespace?: string): ControllerConfig {
  const problems: string[] = [];
  const raw = (name: string) => {
    const value = env[name]?.trim();
    return value === "" ? undefined : value;
  };
  const int = (name: string, fallback: number, min: number, max: number) => {
    const value = raw(name);
    if (value === undefined) return fallback;
    if (!/^-?\d+$/.test(value) || Number(value) < min || Number(value) > max) {
      problems.push(`${name} must be an integer from ${min} to ${max}, got "${value}"`);
      return fallback;
    }
    return Number(value);
  };
  const matching = (name: string, fallback: string, pattern: RegExp, what: string) => {
    const value = raw(name) ?? fallback;
    if (!pattern.test(value)) problems.push(`${name} must be ${what}, got "${value}"`);
    return value;
  };

  const scalerAddress = raw("SCALER_ADDRESS");
  if (scalerAddress === undefined) problems.push("SCALER_ADDRESS is required: host:port of the scaler's gRPC service");
  else if (!ADDRESS.test(scalerAddress)) problems.push(`SCALER_ADDRESS must be host:port, got "${scalerAddress}"`);

  const dryRunValue = raw("DRY_RUN")?.toLowerCase();
  let dryRun = false;
  if (dryRunValue !== undefined) {
    if (["true", "1", "yes"].includes(dryRunValue)) dryRun = true;
    else if (!["false", "0", "no"].includes(dryRunValue)) problems.push(`DRY_RUN must be true or false, got "${raw("DRY_RUN")}"`);
  }

  const logLevel = raw("LOG_LEVEL") ?? "info";
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    problems.push(`LOG_LEVEL must be one of ${LOG_LEVELS.join(", ")}, got "${logLevel}"`);
  }

  const config: ControllerConfig = {
    scalerAddress: scalerAddress ?? "",
    targetDeployment: matching("TARGET_DEPLOYMENT", "chat", SUBDOMAIN, "a Deployment name (lower-case DNS subdomain)"),
    targetNamespace: matching("TARGET_NAMESPACE", ownNamespace ?? "default", LABEL, "a namespace name (lower-case DNS label)"),
    minReplicas: int("MIN_REPLICAS", 1, 1, 10_000),
    maxReplicas: int("MAX_REPLICAS", 10, 1, 10_000),
    usersPerReplica: int("USERS_PER_REPLICA", 3, 1, 1_000_000),
    scaleDownStabilizationSeconds: int("SCALE_DOWN_STABILIZATION_SECONDS", 60, 0, 3600),
    syncIntervalSeconds: int("SYNC_INTERVAL_SECONDS", 5, 1, 3600),
    dryRun,
    logLevel: logLevel as LogLevel,
    podName: raw("POD_NAME") ?? hostname(),
  };
  if (config.minReplicas > config.maxReplicas) {
    problems.push(`MIN_REPLICAS (${config.minReplicas}) must not exceed MAX_REPLICAS (${config.maxReplicas})`);
  }
  if (problems.length > 0) throw new ControllerConfigError(problems);
  return config;
}
