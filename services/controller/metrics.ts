import { Counter, Gauge, Registry, collectDefaultMetrics } from "prom-client";
import type { Decision } from "./decide.js";

/**
 * Why a tick ended the way it did, as `parley_controller_decisions_total{reason}`
 * says it: from decide.ts' `action`, and DRY_RUN. A fixed set.
 */
const DECISION_REASONS = ["scale_up", "scale_down", "stabilised", "unchanged", "dry_run"] as const;
type DecisionReason = (typeof DECISION_REASONS)[number];

/**
 * The bundled controller's metrics, in a registry of its own (one per
 * controller; tests run several in one process), served on its METRICS_PORT.
 * Names follow Prometheus' rules (https://prometheus.io/docs/practices/naming/):
 * `_total` counters, replicas as plain gauges, fixed label values only.
 */
export class ControllerMetrics {
  readonly registry = new Registry();

  /** The replicas the last decision asked for (after the scale-down stabilisation, within the bounds). */
  readonly desiredReplicas = new Gauge({
    name: "parley_controller_desired_replicas",
    help: "Replicas the controller's last decision asked for.",
    registers: [this.registry],
  });
  /** The replicas the target Deployment had at the last read (or was patched to since). */
  readonly currentReplicas = new Gauge({
    name: "parley_controller_current_replicas",
    help: "Replicas the target Deployment has, as the controller last read or wrote them.",
    registers: [this.registry],
  });
  /** Ticks that reached a decision, by what it was. */
  readonly decisions = new Counter({
    name: "parley_controller_decisions_total",
    help: "Scaling decisions, by reason (scale_up, scale_down, stabilised, unchanged, dry_run).",
    labelNames: ["reason"] as const,
    registers: [this.registry],
  });
  /** Failed calls to the Kubernetes API: reading or patching the scale, recording the Event. */
  readonly kubernetesErrors = new Counter({
    name: "parley_controller_kubernetes_errors_total",
    help: "Kubernetes API calls that failed (read scale, patch scale, create Event).",
    registers: [this.registry],
  });
  /** Failed reads of the metric from the scaler. */
  readonly scalerErrors = new Counter({
    name: "parley_controller_scaler_errors_total",
    help: "Reads of the online-users metric from the scaler that failed.",
    registers: [this.registry],
  });

  /** `defaults` adds prom-client's process_* and nodejs_* metrics; default true. */
  constructor(options: { defaults?: boolean } = {}) {
    if (options.defaults !== false) collectDefaultMetrics({ register: this.registry });
    for (const reason of DECISION_REASONS) this.decisions.labels(reason).inc(0);
    // No replicas are known before the first decision: no series (prom-client would show an unlabelled gauge as 0).
    for (const name of ["parley_controller_desired_replicas", "parley_controller_current_replicas"]) this.registry.removeSingleMetric(name);
  }

  private replicasKnown = false;

  /** A tick decided: `current` replicas now, `decision` for the next; `dryRun` when nothing is written. */
  decided(current: number, decision: Decision, dryRun: boolean): void {
    if (!this.replicasKnown) {
      this.replicasKnown = true;
      for (const gauge of [this.desiredReplicas, this.currentReplicas]) this.registry.registerMetric(gauge);
    }
    this.currentReplicas.set(current);
    this.desiredReplicas.set(decision.replicas);
    this.decisions.labels(decisionReason(current, decision, dryRun)).inc();
  }
}

function decisionReason(current: number, decision: Decision, dryRun: boolean): DecisionReason {
  if (decision.replicas === current) return decision.action === "hold" ? "stabilised" : "unchanged";
  if (dryRun) return "dry_run";
  return decision.replicas > current ? "scale_up" : "scale_down";
}
