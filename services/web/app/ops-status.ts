// The cluster status as the page uses it: GetClusterStatusResponse (protobuf-es,
// with bigint int64s and Timestamp messages) turned into plain numbers and
// words, in one place, so that the components read like the dashboard.
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { DependencyState, type GetClusterStatusResponse, ScalingAction } from "../../../gen/es/parley/ops/v1/ops_pb.js";

export interface PodRow {
  name: string;
  services: string[];
  streams: number;
  /** "healthy", "draining" or "stale" (no report for 3 s). */
  state: "healthy" | "draining" | "stale";
  postgres: string;
  redis: string;
  messagesPerSecond: number;
  rssBytes: number;
  reportedAt: number;
}

export interface DecisionRow {
  at: number;
  from: number;
  to: number;
  action: string;
  reason: string;
  dryRun: boolean;
}

export interface OpsView {
  generatedAt: number;
  onlineUsers: number;
  messagesPerSecond: number;
  p50Seconds: number | undefined;
  p99Seconds: number | undefined;
  sends: number;
  windowSeconds: number;
  desired: number;
  current: number;
  usersPerReplica: number;
  controller: { desired: number; current: number; replicas: number; reportedAt: number; dryRun: boolean } | undefined;
  pods: PodRow[];
  decisions: DecisionRow[];
}

const DEPENDENCY: Record<DependencyState, string> = {
  [DependencyState.UNSPECIFIED]: "unknown",
  [DependencyState.UP]: "up",
  [DependencyState.DOWN]: "down",
  [DependencyState.NOT_USED]: "not used",
};

const ACTION: Record<ScalingAction, string> = {
  [ScalingAction.UNSPECIFIED]: "?",
  [ScalingAction.UP]: "up",
  [ScalingAction.DOWN]: "down",
  [ScalingAction.HOLD]: "hold",
  [ScalingAction.NONE]: "none",
};

const ms = (t: Parameters<typeof timestampMs>[0] | undefined) => (t ? timestampMs(t) : 0);

export function toView(status: GetClusterStatusResponse): OpsView {
  const latency = status.sendLatency;
  const sends = Number(latency?.sends ?? 0n);
  const controller = status.replicas?.controller;
  return {
    generatedAt: ms(status.generatedAt),
    onlineUsers: Number(status.onlineUsers),
    messagesPerSecond: status.messagesPerSecond,
    p50Seconds: sends > 0 ? latency?.p50Seconds : undefined,
    p99Seconds: sends > 0 ? latency?.p99Seconds : undefined,
    sends,
    windowSeconds: latency?.windowSeconds ?? 0,
    desired: status.replicas?.desired ?? 0,
    current: status.replicas?.current ?? 0,
    usersPerReplica: status.replicas?.usersPerReplica ?? 0,
    controller: controller && {
      desired: controller.desired,
      current: controller.current,
      replicas: controller.replicas,
      reportedAt: ms(controller.reportedAt),
      dryRun: controller.dryRun,
    },
    pods: status.pods.map((pod) => ({
      name: pod.name,
      services: pod.services,
      streams: Number(pod.streams),
      state: pod.draining ? "draining" : pod.healthy ? "healthy" : "stale",
      postgres: DEPENDENCY[pod.postgres] ?? "unknown",
      redis: DEPENDENCY[pod.redis] ?? "unknown",
      messagesPerSecond: pod.messagesPerSecond,
      rssBytes: Number(pod.rssBytes),
      reportedAt: ms(pod.reportedAt),
    })),
    decisions: status.scalingDecisions.map((d) => ({
      at: ms(d.decidedAt),
      from: d.fromReplicas,
      to: d.toReplicas,
      action: ACTION[d.action] ?? "?",
      reason: d.reason,
      dryRun: d.dryRun,
    })),
  };
}
