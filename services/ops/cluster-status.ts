import { desiredReplicas, type ScaleSettings } from "../controller/decide.js";
import { type Clock, systemClock } from "../lib/clock.js";
import { DEFAULT_USERS_PER_REPLICA } from "../lib/contract.js";
import { quantile, sumBuckets } from "./histogram.js";
import type { PodReport, PodReports } from "./pod-reports.js";
import type { ScalingDecisionRecord, ScalingDecisions } from "./scaling-decisions.js";

/** A pod whose last report is older than this is shown as not healthy: it reports every second. */
const FRESH_REPORT_MS = 3_000;

/** One pod as the dashboard shows it. */
export interface PodStatus extends PodReport {
  /** Its last report is under FRESH_REPORT_MS old. */
  healthy: boolean;
}

/** The whole cluster, as the dashboard shows it (the shape of GetClusterStatusResponse, in domain terms). */
export interface ClusterStatus {
  /** Epoch ms. */
  generatedAt: number;
  onlineUsers: number;
  /** Sum of the pods' rates. */
  messagesPerSecond: number;
  /** Quantiles of the pods' summed send→commit bucket increases; undefined when no send was counted. */
  sendLatency: { p50Seconds: number | undefined; p99Seconds: number | undefined; sends: number; windowSeconds: number };
  replicas: {
    desired: number;
    /** Chat pods with a fresh report that are not draining. */
    current: number;
    usersPerReplica: number;
    /** From the controller's last report, if any. */
    controller: { desired: number; current: number; replicas: number; reportedAt: number; dryRun: boolean } | undefined;
  };
  pods: PodStatus[];
  /** Newest first. */
  decisions: ScalingDecisionRecord[];
}

export interface ClusterStatusDeps {
  /** Distinct users online in the cluster (presence). */
  onlineCount(): Promise<number>;
  reports: PodReports;
  decisions: ScalingDecisions;
  /** The rule the dashboard's desired count follows; default the controller's defaults (1..10, 3 users per replica). */
  scaling?: Pick<ScaleSettings, "minReplicas" | "maxReplicas" | "usersPerReplica">;
  clock?: Clock;
}

/**
 * Puts the cluster's status together from what is shared: presence, the pods'
 * reports and the controller's decisions. It keeps nothing between calls (the
 * pods did the windowing), so any scaler replica answers alike.
 */
export class ClusterStatusReader {
  private readonly clock: Clock;

  constructor(private readonly deps: ClusterStatusDeps) {
    this.clock = deps.clock ?? systemClock;
  }

  async read(): Promise<ClusterStatus> {
    const [onlineUsers, reports, decisions, last] = await Promise.all([
      this.deps.onlineCount(),
      this.deps.reports.list(),
      this.deps.decisions.recent(),
      this.deps.decisions.last(),
    ]);
    const now = this.clock.now();
    const pods = reports.map((report) => ({ ...report, healthy: now - report.reportedAt < FRESH_REPORT_MS }));
    const commits = sumBuckets(pods.map((pod) => pod.sendCommit));
    const scaling = this.deps.scaling ?? { minReplicas: 1, maxReplicas: 10, usersPerReplica: DEFAULT_USERS_PER_REPLICA };
    const { desired } = desiredReplicas(onlineUsers, { ...scaling, scaleDownStabilizationSeconds: 0 });
    return {
      generatedAt: now,
      onlineUsers,
      messagesPerSecond: pods.reduce((sum, pod) => sum + pod.messagesPerSecond, 0),
      sendLatency: {
        p50Seconds: quantile(0.5, commits),
        p99Seconds: quantile(0.99, commits),
        sends: commits.total,
        windowSeconds: Math.max(0, ...pods.map((pod) => pod.windowSeconds)),
      },
      replicas: {
        desired,
        current: pods.filter((pod) => pod.healthy && !pod.draining && pod.services.includes("chat")).length,
        usersPerReplica: scaling.usersPerReplica,
        controller: last && { desired: last.desired, current: last.from, replicas: last.to, reportedAt: last.at, dryRun: last.dryRun },
      },
      pods,
      decisions,
    };
  }
}
