// The controller's loop: every SYNC_INTERVAL_SECONDS read the metric, read
// the scale, decide, and write only when the decision differs from what is
// there. A failed read leaves the Deployment alone until the next tick.
import { KubeConfig } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { type Clock, delay, systemClock } from "../lib/clock.js";
import type { ControllerConfig } from "./config.js";
import { decide, startingHistory, type Recommendation, type ScaleSettings } from "./decide.js";
import { DeploymentScale } from "./deployment-scale.js";
import { LogBackoff } from "./log-backoff.js";
import type { ControllerMetrics } from "./metrics.js";
import type { ScalingDecisionRecord } from "../ops/scaling-decisions.js";
import { ScalerClient, type ScalerReading } from "./scaler-client.js";

/** The Events' reportingController. */
const REPORTING_CONTROLLER = "parley/controller";

/** What the loop reads the metric from: the scaler in production. */
interface MetricSource {
  read(signal?: AbortSignal): Promise<ScalerReading>;
  /** Tells the scaler what the tick decided, for the dashboard; best effort, never rejects. */
  report(decision: ScalingDecisionRecord): Promise<void>;
}

/**
 * What the loop sizes: its replicas are read and patched, and each change is
 * recorded. In production, a Deployment's scale subresource (DeploymentScale).
 */
interface ScaleTarget {
  /** The replicas the target has now. */
  current(): Promise<number>;
  /** Asks for `replicas`; resolves to what was stored. */
  set(replicas: number): Promise<number>;
  /** Records why the replicas went `from` → `to` (an Event), after `set`. */
  recordScaling(from: number, to: number, note: string): Promise<void>;
}

export interface ControllerDeps {
  log: Logger;
  /** Aborting it ends the loop after the tick in progress. */
  signal: AbortSignal;
  /** Defaults to `loadFromDefault()`: in-cluster credentials, or KUBECONFIG. */
  kubeConfig?: KubeConfig;
  /**
   * Times the wait between ticks and dates each tick for the stabilisation
   * window. Default the system clock, with timers that keep the process alive
   * (waiting is the controller's whole job). Calls' deadlines stay on real time.
   */
  clock?: Clock;
  /** Where each tick's decision and failures are counted (metrics.ts). Default none. */
  metrics?: ControllerMetrics;
}

/** systemClock, except that the loop's wait holds the process open. */
const processClock: Clock = { ...systemClock, setTimeout: (callback, ms) => setTimeout(callback, ms) };

/** Each call's deadline: the sync interval, kept between 1 and 10 s, so a tick never piles onto the next. */
function callDeadlineMs(config: ControllerConfig): number {
  return Math.min(10_000, Math.max(1_000, config.syncIntervalSeconds * 1000));
}

/**
 * Runs the controller until `signal` aborts; resolves once the last tick has
 * finished and the scaler connection is closed. Never rejects because the
 * scaler or the API server is down: those are logged, and retried next tick.
 */
export async function runController(config: ControllerConfig, deps: ControllerDeps): Promise<void> {
  const log = deps.log.child({ component: "controller" });
  const kubeConfig = deps.kubeConfig ?? loadKubeConfig();
  const target = { namespace: config.targetNamespace, name: config.targetDeployment };
  const deadlineMs = callDeadlineMs(config);
  const scaler = new ScalerClient({
    address: config.scalerAddress,
    ref: { name: target.name, namespace: target.namespace, scalerMetadata: { usersPerReplica: String(config.usersPerReplica) } },
    deadlineMs,
    log,
  });
  const scale = new DeploymentScale(kubeConfig, target, { controller: REPORTING_CONTROLLER, instance: config.podName }, deadlineMs);
  log.info({ target, server: kubeConfig.getCurrentCluster()?.server, scaler: config.scalerAddress, dryRun: config.dryRun }, "controller started");
  const clock = deps.clock ?? processClock;
  const tick = createTick(config, scaler, scale, log, { clock, signal: deps.signal, metrics: deps.metrics });
  try {
    while (!deps.signal.aborted) {
      const started = clock.now();
      await tick();
      await delay(clock, config.syncIntervalSeconds * 1000 - (clock.now() - started), deps.signal);
    }
  } finally {
    scaler.close();
    log.info("controller stopped");
  }
}

function loadKubeConfig(): KubeConfig {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromDefault();
  return kubeConfig;
}

/**
 * One read-decide-write step, with the state that lives between ticks: the
 * window's desires, and what was last logged (a repeated decision is logged at
 * debug, so a steady cluster does not fill the logs).
 */
function createTick(
  config: ControllerConfig,
  metric: MetricSource,
  scale: ScaleTarget,
  log: Logger,
  { clock, signal, metrics }: { clock: Clock; signal?: AbortSignal; metrics?: ControllerMetrics },
) {
  let history: Recommendation[] | undefined;
  let lastLogged = "";
  // While the scaler or the API server is down every tick fails alike: log the first, then fewer (log-backoff.ts).
  const failures = { metric: new LogBackoff(clock), api: new LogBackoff(clock), patch: new LogBackoff(clock) };

  return async function tick(): Promise<void> {
    let reading: ScalerReading;
    try {
      reading = await metric.read(signal);
    } catch (err) {
      metrics?.scalerErrors.inc();
      const line = failures.metric.failed(err);
      if (line) log.warn({ err, ...line }, "metric unavailable; keeping the current replicas");
      return;
    }
    const metricBack = failures.metric.succeeded();
    if (metricBack) log.info(metricBack, "metric readable again");

    let current: number;
    try {
      current = await scale.current();
    } catch (err) {
      metrics?.kubernetesErrors.inc();
      const line = failures.api.failed(err);
      if (line) log.error({ err, ...line }, "could not read the scale; retrying next tick");
      return;
    }
    const apiBack = failures.api.succeeded();
    if (apiBack) log.info(apiBack, "API server reachable again");

    const now = clock.now();
    const settings: ScaleSettings = {
      minReplicas: config.minReplicas,
      maxReplicas: config.maxReplicas,
      usersPerReplica: reading.target,
      scaleDownStabilizationSeconds: config.scaleDownStabilizationSeconds,
    };
    history ??= startingHistory(current, now, settings);
    const decision = decide({ current, users: reading.users, history, now, settings });
    history = decision.history;
    metrics?.decided(current, decision, config.dryRun);
    const { replicas: to, desired, action, reason } = decision;
    void metric.report({ at: now, from: current, to, desired, users: reading.users, action, reason, dryRun: config.dryRun });

    const fields = {
      users: reading.users,
      target: reading.target,
      current,
      desired: decision.desired,
      replicas: decision.replicas,
      action: decision.action,
      reason: decision.reason,
    };
    const key = `${current}|${decision.replicas}|${decision.reason}`;
    const level = key === lastLogged ? "debug" : "info";
    lastLogged = key;
    if (decision.replicas === current) {
      log[level](fields, "decision: no write");
      return;
    }
    if (config.dryRun) {
      log[level]({ ...fields, dryRun: true }, `dry run: would scale ${current} → ${decision.replicas}`);
      return;
    }
    log.info(fields, `scaling ${current} → ${decision.replicas}`);
    try {
      const stored = await scale.set(decision.replicas);
      metrics?.currentReplicas.set(stored);
    } catch (err) {
      metrics?.kubernetesErrors.inc();
      lastLogged = "";
      const line = failures.patch.failed(err);
      if (line) log.error({ err, replicas: decision.replicas, ...line }, "could not patch the scale; retrying next tick");
      return;
    }
    const patchBack = failures.patch.succeeded();
    if (patchBack) log.info(patchBack, "scale patched again");
    try {
      await scale.recordScaling(current, decision.replicas, decision.reason);
    } catch (err) {
      metrics?.kubernetesErrors.inc();
      log.warn({ err }, "scaled, but could not record the Event");
    }
  };
}
