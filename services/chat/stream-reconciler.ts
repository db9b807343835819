import type { SessionStore } from "../auth/sessions.js";
import type { Logger } from "../lib/logger.js";
import type { ChatStream } from "./chat-stream.js";
import type { Hub } from "./hub.js";
import type { LivePosition } from "./live-positions.js";
import { BROADCAST_ID } from "./conversation-ids.js";
import type { StreamCalls } from "./stream-call.js";
import { type Clock, systemClock } from "../lib/clock.js";

/** How often this pod compares its streams with Postgres. Default 1.5 s: a missed message shows within ~2 ticks. */
const RECONCILE_INTERVAL_MS = 1_500;

export interface StreamReconcilerDeps {
  hub: Hub;
  calls: StreamCalls;
  sessions: Pick<SessionStore, "endedAmong">;
  /** Every DM and group of the given users, and broadcast, with their last seq (live-positions.ts). */
  positions: (userIds: number[]) => Promise<LivePosition[]>;
  log: Logger;
  intervalMs?: number;
  /** Ticks and "now" (compared with ChatStream's membership stamps, which read the same clock). Default the system clock. */
  clock?: Clock;
}

/**
 * Postgres is the truth; Redis pub/sub is only the fast path. This pod-wide
 * loop makes every open stream converge on the truth, whatever happened to
 * the fast path (design.md, "Live means live" and "Authentication"):
 *
 * - a message committed in a conversation a stream follows, but not
 *   delivered to it one tick later (a publish that failed, a command
 *   connection that dropped, a commit that finished after its caller gave
 *   up, a pod that died between commit and publish), is loaded from Postgres;
 * - a group the user joined or left while the membership event was lost is
 *   followed or dropped;
 * - a stream whose session was revoked or expired is ended with
 *   UNAUTHENTICATED, including a Connect that has not sent `hello` yet.
 *
 * A message thus reaches a live stream within about two ticks (3 s at the
 * default) plus one load, inside the 5 s the design allows. Each tick is two
 * statements for the whole pod, however many streams it holds.
 */
export class StreamReconciler {
  /** Each conversation's last seq at the previous tick: a stream still behind it has missed something. */
  private previous = new Map<string, number>();
  private readonly intervalMs: number;
  private readonly clock: Clock;
  private readonly log: Logger;

  constructor(private readonly deps: StreamReconcilerDeps) {
    this.intervalMs = deps.intervalMs ?? RECONCILE_INTERVAL_MS;
    this.clock = deps.clock ?? systemClock;
    this.log = deps.log.child({ component: "stream-reconciler" });
  }

  /** Runs a tick every interval until `signal` aborts. */
  start(signal: AbortSignal): void {
    let timer: unknown;
    const schedule = () => {
      if (signal.aborted) return;
      timer = this.clock.setTimeout(() => void this.tick().finally(schedule), this.intervalMs);
    };
    signal.addEventListener("abort", () => this.clock.clearTimeout(timer), { once: true });
    schedule();
  }

  /** One comparison of this pod's streams with Postgres. Never rejects: a failed tick is retried at the next. */
  async tick(): Promise<void> {
    try {
      await this.endRevokedSessions();
      await this.catchUpStreams();
    } catch (err) {
      this.log.warn({ err }, "could not compare streams with Postgres; retrying at the next tick");
    }
  }

  private async endRevokedSessions(): Promise<void> {
    const ids = this.deps.calls.sessionIds();
    if (ids.length === 0) return;
    for (const sessionId of await this.deps.sessions.endedAmong(ids)) {
      this.deps.calls.endSession(sessionId, "session revoked or expired");
    }
  }

  private async catchUpStreams(): Promise<void> {
    const streams = this.deps.hub.openStreams().filter((s) => s.isCaughtUp && !s.isEnded);
    if (streams.length === 0) {
      this.previous.clear();
      return;
    }
    const startedAt = this.clock.now();
    const rows = await this.deps.positions([...new Set(streams.map((s) => s.user.id))]);
    const byUser = new Map<number, LivePosition[]>();
    let broadcast: LivePosition | undefined;
    for (const row of rows) {
      if (row.userId === undefined) {
        broadcast = row;
        continue;
      }
      let list = byUser.get(row.userId);
      if (list === undefined) {
        list = [];
        byUser.set(row.userId, list);
      }
      list.push(row);
    }
    for (const stream of streams) {
      const mine = byUser.get(stream.user.id) ?? [];
      this.reconcileMembership(stream, mine, startedAt);
      for (const row of broadcast ? [...mine, broadcast] : mine) this.reconcilePosition(stream, row);
    }
    this.previous = new Map(rows.map((r) => [r.conversationId, r.lastSeq]));
  }

  /** Follows groups the user is in and drops those they left, unless the stream heard of a change after the read. */
  private reconcileMembership(stream: ChatStream, rows: LivePosition[], readAt: number): void {
    if (stream.isEnded) return;
    const groups = new Map(rows.filter((r) => r.kind === "group").map((r) => [r.conversationId, r]));
    for (const [conversationId, row] of groups) {
      if (stream.conversations.has(conversationId) || stream.membershipChangedAt(conversationId) >= readAt) continue;
      this.log.info({ streamId: stream.id, conversationId }, "stream missed a join; following the group");
      this.deps.hub.follow(stream, conversationId, row.lastReadSeq);
    }
    for (const conversationId of [...stream.conversations]) {
      if (conversationId === BROADCAST_ID || groups.has(conversationId)) continue;
      if (stream.membershipChangedAt(conversationId) >= readAt) continue;
      this.log.info({ streamId: stream.id, conversationId }, "stream missed a leave; dropping the group");
      this.deps.hub.unfollow(stream, conversationId);
    }
  }

  private reconcilePosition(stream: ChatStream, row: LivePosition): void {
    if (stream.isEnded) return;
    if (row.kind === "group" && !stream.conversations.has(row.conversationId)) return;
    const before = this.previous.get(row.conversationId);
    if (before === undefined || stream.position(row.conversationId) >= before) return;
    this.log.info(
      { streamId: stream.id, conversationId: row.conversationId, position: stream.position(row.conversationId), lastSeq: before },
      "stream missed live messages; loading them from Postgres",
    );
    stream.catchUp(row.conversationId);
  }
}
