// The dashboard's memory: the last ~2 minutes of the cluster's headline
// figures, one point per poll, for the sparklines. Pure; the page keeps one.

/** How far back the sparklines reach: 2 minutes. */
export const HISTORY_MS = 120_000;

/** One poll's headline figures. */
export interface OpsPoint {
  /** Epoch ms (the server's generated_at). */
  at: number;
  onlineUsers: number;
  messagesPerSecond: number;
  /** Send→commit p99 in seconds; undefined when nothing was sent in the window. */
  p99Seconds: number | undefined;
}

/** `points` with `point` added, and those older than `HISTORY_MS` before it dropped; a point not newer than the last is ignored. */
export function addPoint(points: readonly OpsPoint[], point: OpsPoint, spanMs = HISTORY_MS): OpsPoint[] {
  const last = points.at(-1);
  if (last !== undefined && point.at <= last.at) return [...points];
  return [...points.filter((p) => p.at > point.at - spanMs), point];
}
