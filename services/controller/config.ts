import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { LOG_LEVELS, type LogLevel } from "../lib/config.js";
import { type Env, EnvError, EnvReader } from "../lib/env.js";
import { DEFAULT_USERS_PER_REPLICA } from "../lib/contract.js";
import { LOG_FORMATS, type LogFormat } from "../lib/logger.js";

/** Where a pod finds its own namespace; absent outside a cluster. */
const SERVICE_ACCOUNT_NAMESPACE_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

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
  /** LOG_FORMAT: json, pretty, or auto (pretty on a terminal, else JSON). Default auto. */
  logFormat: LogFormat;
  /** POD_NAME: this controller's identity in logs and as the Events' reportingInstance. Default the hostname. */
  podName: string;
  /**
   * METRICS_PORT: where Prometheus scrapes the controller's `/metrics`
   * (metrics.ts), plain HTTP; 0 turns it off. Default 9464, as the servers'.
   */
  metricsPort: number | undefined;
}

/** The controller's environment had problems; `problems` lists every one, each naming its variable. */
export class ControllerConfigError extends EnvError {
  override name = "ControllerConfigError";
}

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
  const read = new EnvReader(env);
  const scalerAddress = read.required("SCALER_ADDRESS", "host:port of the scaler's gRPC service");
  const config: ControllerConfig = {
    scalerAddress: scalerAddress === undefined ? "" : read.matching("SCALER_ADDRESS", scalerAddress, ADDRESS, "host:port"),
    targetDeployment: read.matching("TARGET_DEPLOYMENT", "chat", SUBDOMAIN, "a Deployment name (lower-case DNS subdomain)"),
    targetNamespace: read.matching("TARGET_NAMESPACE", ownNamespace ?? "default", LABEL, "a namespace name (lower-case DNS label)"),
    minReplicas: read.int("MIN_REPLICAS", 1, 1, 10_000),
    maxReplicas: read.int("MAX_REPLICAS", 10, 1, 10_000),
    usersPerReplica: read.int("USERS_PER_REPLICA", DEFAULT_USERS_PER_REPLICA, 1, 1_000_000),
    scaleDownStabilizationSeconds: read.int("SCALE_DOWN_STABILIZATION_SECONDS", 60, 0, 3600),
    syncIntervalSeconds: read.int("SYNC_INTERVAL_SECONDS", 5, 1, 3600),
    dryRun: read.boolean("DRY_RUN", false),
    logLevel: read.oneOf<LogLevel>("LOG_LEVEL", LOG_LEVELS, "info"),
    logFormat: read.oneOf<LogFormat>("LOG_FORMAT", LOG_FORMATS, "auto"),
    podName: read.string("POD_NAME", hostname()),
    metricsPort: read.int("METRICS_PORT", 9464, 0, 65535) || undefined,
  };
  if (config.minReplicas > config.maxReplicas) {
    read.problem(`MIN_REPLICAS (${config.minReplicas}) must not exceed MAX_REPLICAS (${config.maxReplicas})`);
  }
  read.check((problems) => new ControllerConfigError(problems));
  return config;
}
