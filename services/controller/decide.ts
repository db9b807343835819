// The controller's whole policy, as one pure function: what the metric asks
// for, bounded, scaled up at once and down only after a stabilisation window,
// like the HorizontalPodAutoscaler's `behavior.scaleDown.stabilizationWindowSeconds`.

/** The bounds and pace of scaling; every field comes from the controller's settings. */
export interface ScaleSettings {
  /** Never fewer replicas than this (MIN_REPLICAS, default 1). */
  minReplicas: number;
  /** Never more replicas than this (MAX_REPLICAS, default 10). */
  maxReplicas: number;
  /** Users one replica serves: the scaler's target (USERS_PER_REPLICA, default 3). */
  usersPerReplica: number;
  /** A scale-down goes only as low as the highest desire seen this long ago (default 60). */
  scaleDownStabilizationSeconds: number;
}

/** One past desire: what the metric asked for at `at` (epoch ms). */
export interface Recommendation {
  at: number;
  desired: number;
}

export interface DecideInput {
  /** Replicas the Deployment has now (spec.replicas of its scale subresource). */
  current: number;
  /** The metric: users online in the whole cluster. */
  users: number;
  /** Desires from earlier ticks, as the last decision returned them. */
  history: readonly Recommendation[];
  /** Epoch ms of this tick. */
  now: number;
  settings: ScaleSettings;
}

/** What changes: `up` and `down` mean a write, `hold` and `none` mean none. */
type ScaleAction = "up" | "down" | "hold" | "none";

export interface Decision {
  /** Replicas the Deployment should have; equal to `current` means write nothing. */
  replicas: number;
  /** What the metric alone asks for, bounded: clamp(ceil(users / usersPerReplica), min, max). */
  desired: number;
  action: ScaleAction;
  /** Why, for a log line and the Event: e.g. "7 users / 3 per replica → 3". */
  reason: string;
  /** The desires still inside the window, this one included; pass it to the next call. */
  history: Recommendation[];
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

/**
 * What the metric asks for, bounded, with the arithmetic spelled out for the
 * reason string. 0 users gives the minimum; a non-finite or negative count is
 * treated as 0 so that a strange reading can never ask for more than max.
 */
export function desiredReplicas(users: number, settings: ScaleSettings): { desired: number; explanation: string } {
  const count = Number.isFinite(users) && users > 0 ? users : 0;
  const raw = Math.ceil(count / settings.usersPerReplica);
  let explanation = `${plural(count, "user")} / ${settings.usersPerReplica} per replica → ${raw}`;
  let desired = raw;
  if (raw > settings.maxReplicas) {
    desired = settings.maxReplicas;
    explanation += `, clamped to max ${settings.maxReplicas}`;
  } else if (raw < settings.minReplicas) {
    desired = settings.minReplicas;
    explanation += `, clamped to min ${settings.minReplicas}`;
  }
  return { desired, explanation };
}

/**
 * The history a controller starts with: as if `current` (bounded) had been
 * desired just now. So a restarted controller waits out a whole window before
 * it scales down, instead of trusting the first reading it gets.
 */
export function startingHistory(current: number, now: number, settings: ScaleSettings): Recommendation[] {
  const bounded = Math.min(settings.maxReplicas, Math.max(settings.minReplicas, current));
  return [{ at: now, desired: bounded }];
}

/**
 * Decides the replica count for one tick. Up: at once, to the desire. Down:
 * only to the highest desire recorded within the last
 * `scaleDownStabilizationSeconds`, so a dip in users does not flap the pods.
 * Desires older than the window are pruned from the returned history.
 */
export function decide(input: DecideInput): Decision {
  const { current, now, settings } = input;
  const { desired, explanation } = desiredReplicas(input.users, settings);
  const windowMs = settings.scaleDownStabilizationSeconds * 1000;
  const history = input.history.filter((r) => r.at > now - windowMs && r.at <= now);
  history.push({ at: now, desired });

  if (desired > current) {
    return { replicas: desired, desired, action: "up", reason: explanation, history };
  }
  if (desired === current) {
    return { replicas: current, desired, action: "none", reason: `${explanation}; no change`, history };
  }
  const highest = Math.max(...history.map((r) => r.desired));
  const window = `highest desired in the last ${settings.scaleDownStabilizationSeconds}s`;
  if (highest >= current) {
    return { replicas: current, desired, action: "hold", reason: `${explanation}; holding at ${current}: ${window}`, history };
  }
  if (highest > desired) {
    return { replicas: highest, desired, action: "down", reason: `${explanation}; down to ${highest}: ${window}`, history };
  }
  return { replicas: desired, desired, action: "down", reason: explanation, history };
}
