/** How many decisions the dashboard lists: the last 20. */
export const DECISIONS_KEPT = 20;

/** What the controller decided in one tick (services/controller/decide.ts), as it reports it to the scaler. */
export interface ScalingDecisionRecord {
  /** Epoch ms of the tick. */
  at: number;
  /** Replicas the Deployment had. */
  from: number;
  /** Replicas the decision set (or would have, in a dry run); `from` for hold and none. */
  to: number;
  /** What the metric alone asked for, before the stabilisation window. */
  desired: number;
  /** The metric: users online. */
  users: number;
  action: "up" | "down" | "hold" | "none";
  /** The controller's own words, e.g. "7 users / 3 per replica → 3". */
  reason: string;
  dryRun: boolean;
}

/**
 * Whether a decision goes into the listed history, and under which key: every
 * tick reports, but a tick that changes nothing ("none") is not a decision
 * worth a line, and a decision equal to the one reported just before it (a
 * hold repeated each tick of the window, a dry run's "would scale" repeated
 * until someone acts) is listed once. The key is compared with the previous
 * report's, whatever that was, so a hold that comes back after a change is
 * listed again. Users are left out of the key: they change every tick.
 */
export function decisionKey(decision: ScalingDecisionRecord): string {
  return `${decision.from}|${decision.to}|${decision.action}|${decision.dryRun}`;
}

export const isListed = (decision: ScalingDecisionRecord): boolean => decision.action !== "none";

/**
 * The controller's reports, kept where every scaler replica reads them: in
 * memory (embedded mode) or in Redis (scaling-decisions-redis.ts).
 */
export interface ScalingDecisions {
  /** Keeps `decision` as the last report, and lists it when `isListed` and its key differs from the last report's. */
  record(decision: ScalingDecisionRecord): Promise<void>;
  /** The listed decisions, newest first, at most DECISIONS_KEPT. */
  recent(): Promise<ScalingDecisionRecord[]>;
  /** The last report, listed or not; undefined before the first. */
  last(): Promise<ScalingDecisionRecord | undefined>;
}
