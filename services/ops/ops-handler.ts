import {
  DependencyState,
  type GetClusterStatusResponse,
  type OpsServiceServer,
  type Pod,
  ScalingAction,
  type ScalingDecision,
} from "../../gen/parley/ops/v1/ops.js";
import { AppError } from "../lib/app-error.js";
import { unary } from "../lib/grpc-calls.js";
import type { Logger } from "../lib/logger.js";
import { codePoints } from "../lib/text.js";
import type { ClusterStatus, ClusterStatusReader, PodStatus } from "./cluster-status.js";
import type { DependencyHealth } from "./metrics-sample.js";
import type { ScalingDecisionRecord, ScalingDecisions } from "./scaling-decisions.js";

/** A decision's reason is the controller's one-line explanation; longer is refused. */
const MAX_REASON_CHARS = 500;

const DEPENDENCY: Record<DependencyHealth, DependencyState> = {
  up: DependencyState.DEPENDENCY_STATE_UP,
  down: DependencyState.DEPENDENCY_STATE_DOWN,
  unknown: DependencyState.DEPENDENCY_STATE_UNSPECIFIED,
  not_used: DependencyState.DEPENDENCY_STATE_NOT_USED,
};

const ACTIONS: Record<ScalingDecisionRecord["action"], ScalingAction> = {
  up: ScalingAction.SCALING_ACTION_UP,
  down: ScalingAction.SCALING_ACTION_DOWN,
  hold: ScalingAction.SCALING_ACTION_HOLD,
  none: ScalingAction.SCALING_ACTION_NONE,
};

const toPod = (pod: PodStatus): Pod => ({
  name: pod.pod,
  services: pod.services,
  streams: pod.streams,
  draining: pod.draining,
  healthy: pod.healthy,
  postgres: DEPENDENCY[pod.postgres],
  redis: DEPENDENCY[pod.redis],
  messagesPerSecond: pod.messagesPerSecond,
  rssBytes: Math.round(pod.rssBytes),
  reportedAt: new Date(pod.reportedAt),
});

const toDecision = (d: ScalingDecisionRecord): ScalingDecision => ({
  decidedAt: new Date(d.at),
  fromReplicas: d.from,
  toReplicas: d.to,
  desiredReplicas: d.desired,
  onlineUsers: d.users,
  action: ACTIONS[d.action],
  reason: d.reason,
  dryRun: d.dryRun,
});

function toResponse(status: ClusterStatus): GetClusterStatusResponse {
  const { controller } = status.replicas;
  return {
    generatedAt: new Date(status.generatedAt),
    onlineUsers: status.onlineUsers,
    messagesPerSecond: status.messagesPerSecond,
    sendLatency: {
      p50Seconds: status.sendLatency.p50Seconds ?? 0,
      p99Seconds: status.sendLatency.p99Seconds ?? 0,
      sends: Math.round(status.sendLatency.sends),
      windowSeconds: status.sendLatency.windowSeconds,
    },
    replicas: {
      desired: status.replicas.desired,
      current: status.replicas.current,
      usersPerReplica: status.replicas.usersPerReplica,
      controller: controller && { ...controller, reportedAt: new Date(controller.reportedAt) },
    },
    pods: status.pods.map(toPod),
    scalingDecisions: status.decisions.map(toDecision),
  };
}

const count = (value: number, field: string) => {
  if (!Number.isSafeInteger(value) || value < 0) throw new AppError("invalid_argument", `decision.${field} must be 0 or more, got ${value}`);
  return value;
};

/** The decision a request carries, checked: INVALID_ARGUMENT names the first field that is wrong. */
function fromDecision(decision: ScalingDecision | undefined, now: number): ScalingDecisionRecord {
  if (decision === undefined) throw new AppError("invalid_argument", "decision is required");
  const action = (Object.keys(ACTIONS) as ScalingDecisionRecord["action"][]).find((name) => ACTIONS[name] === decision.action);
  if (action === undefined) throw new AppError("invalid_argument", "decision.action must be UP, DOWN, HOLD or NONE");
  const reason = decision.reason.trim();
  if (reason === "" || codePoints(reason) > MAX_REASON_CHARS) {
    throw new AppError("invalid_argument", `decision.reason must be 1 to ${MAX_REASON_CHARS} characters`);
  }
  const at = decision.decidedAt?.getTime();
  return {
    at: at !== undefined && Number.isFinite(at) ? at : now,
    from: count(decision.fromReplicas, "from_replicas"),
    to: count(decision.toReplicas, "to_replicas"),
    desired: count(decision.desiredReplicas, "desired_replicas"),
    users: count(decision.onlineUsers, "online_users"),
    action,
    reason,
    dryRun: decision.dryRun,
  };
}

/**
 * gRPC transport for OpsService. GetClusterStatus needs no token: it answers
 * aggregate figures and pod names only, never a user or a conversation, and
 * browsers reach it through gRPC-web. RecordScalingDecision is for the
 * controller; the edge (Envoy, the embedded gateway) does not route it.
 */
export function createOpsHandler(status: ClusterStatusReader, decisions: ScalingDecisions, now: () => number, log: Logger): OpsServiceServer {
  const handlerLog = log.child({ component: "ops" });
  return {
    getClusterStatus: unary(handlerLog, "GetClusterStatus", async () => toResponse(await status.read())),
    recordScalingDecision: unary(handlerLog, "RecordScalingDecision", async (req) => {
      await decisions.record(fromDecision(req.decision, now()));
      return {};
    }),
  } satisfies OpsServiceServer;
}
