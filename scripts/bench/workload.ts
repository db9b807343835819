// The workload both systems get: who the virtual users are, who talks to
// whom, and an open-loop sender that schedules messages by the clock (never
// waiting for acks, so a slow server cannot slow the offered load down and
// hide its latency). Receivers record send→delivery latency and every
// (receiver, message id) pair, so loss and duplicates are exact counts.
import { Samples, type LatencySummary } from "./stats.js";

export type SystemName = "parley" | "socketio";
export type ScenarioName = "fanout" | "dm";

export interface Target {
  group?: string;
  username?: string;
}

export interface Group {
  name: string;
  /** User indices. */
  members: number[];
}

/** The virtual users and their relationships, the same for both systems. */
export interface Population {
  names: string[];
  groups: Group[];
  /** DM pairs, by user index. */
  pairs: [number, number][];
  /** For the resume scenario: receivers plus, last, the sender. */
  resumeGroup: Group;
}

/** One system's backend as a client sees it. */
export interface Endpoint {
  name: string;
  address: string;
}

/** A system under test, as the workload drives it. */
export interface Driver {
  readonly system: SystemName;
  /** Accounts and groups, once per benchmark run. */
  prepare(population: Population): Promise<void>;
  /** One connection per user (joined to its groups); `route(user)` lists endpoints in failover order. Resolves when all are live. */
  connect(users: number[], route: (user: number) => Endpoint[]): Promise<void>;
  /** Resolves when the server acknowledges the message. */
  send(from: number, to: Target, body: string, clientMsgId: string): Promise<void>;
  onMessage(handler: (receiver: number, body: string) => void): void;
  /** A connection that was lost is live again (after a failover), on `endpoint`. */
  onResumed(handler: (user: number, endpoint: string) => void): void;
  /** Streams lost and streams the server ended for being slow, since the driver was made (a run takes the difference). */
  streamEvents(): StreamEvents;
  disconnect(): Promise<void>;
}

export interface StreamEvents {
  /** Connections or streams that ended while the benchmark wanted them, and were opened again. */
  reconnects: number;
  /** Of those, the ones the server ended because the client read too slowly. */
  endedSlow: number;
}

export function buildPopulation(runId: string, users: number, groupSize: number, resumeUsers: number): Population {
  const names = Array.from({ length: users }, (_, i) => `b${runId}u${i}`);
  const groups: Group[] = [];
  for (let g = 0; (g + 1) * groupSize <= users; g++) {
    groups.push({ name: `b${runId}g${g}`, members: Array.from({ length: groupSize }, (_, j) => g * groupSize + j) });
  }
  const pairs: [number, number][] = [];
  for (let i = 0; i + 1 < users; i += 2) pairs.push([i, i + 1]);
  const resumeCount = Math.min(resumeUsers, users - 1);
  const resumeGroup = { name: `b${runId}r`, members: Array.from({ length: resumeCount + 1 }, (_, i) => i) };
  return { names, groups, pairs, resumeGroup };
}

/** Who sends message `k` of a scenario, where to, and who must receive it. */
export interface Route {
  from: number;
  to: Target;
  recipients: number[];
}

export function routeOf(population: Population, scenario: ScenarioName, k: number): Route {
  if (scenario === "fanout") {
    const g = k % population.groups.length;
    const group = population.groups[g];
    // One publisher per group, chosen so that publishers are spread over the backends (user i is on backend i mod n).
    return { from: group.members[g % group.members.length], to: { group: group.name }, recipients: group.members };
  }
  const pair = population.pairs[k % population.pairs.length];
  const forward = Math.floor(k / population.pairs.length) % 2 === 0;
  const [from, peer] = forward ? pair : [pair[1], pair[0]];
  // Both systems deliver a DM to the sender's own connections too.
  return { from, to: { username: population.names[peer] }, recipients: [from, peer] };
}

/** Users a scenario needs connected. */
export function usersOf(population: Population, scenario: ScenarioName): number[] {
  const set = new Set<number>();
  if (scenario === "fanout") for (const g of population.groups) for (const m of g.members) set.add(m);
  else for (const [a, b] of population.pairs) set.add(a).add(b);
  return [...set].sort((a, b) => a - b);
}

/** `tag|k|sentAtMs|padding`: the id and the (intended) send time travel in the body. */
export function encodeBody(tag: string, k: number, sentAt: number, bytes: number): string {
  const head = `${tag}|${k}|${sentAt.toFixed(3)}|`;
  return head.length >= bytes ? head : head + "x".repeat(bytes - head.length);
}

export function decodeBody(body: string): { tag: string; k: number; sentAt: number } | undefined {
  const parts = body.split("|", 3);
  if (parts.length < 3) return undefined;
  const k = Number(parts[1]);
  const sentAt = Number(parts[2]);
  return Number.isInteger(k) && Number.isFinite(sentAt) ? { tag: parts[0], k, sentAt } : undefined;
}

export interface DeliveryCounts {
  /** Messages scheduled in the window. */
  scheduled: number;
  acked: number;
  /** Sends the server refused or that were still unacknowledged at the end of the drain. */
  unacked: number;
  /** Acknowledged messages × their recipients. */
  expected: number;
  /** First deliveries of (receiver, message) pairs. */
  delivered: number;
  deliveredInWindow: number;
  /** First deliveries by the window's end plus the latency SLO (late sends of the window get that long to arrive). */
  deliveredInSloWindow: number;
  ackedInWindow: number;
  /** Expected (receiver, message) pairs never delivered, for acknowledged messages. */
  lost: number;
  /** Deliveries of a (receiver, message) pair after its first. */
  duplicates: number;
  /** Messages of an earlier run (a replay) or with a body we cannot read. */
  stale: number;
  latency: LatencySummary;
  ackLatency: LatencySummary;
  /** How long after the window the last expected delivery arrived (or the drain gave up). */
  drainMs: number;
}

/**
 * Bookkeeping of one run: what was sent to whom, what arrived, when. Keys are
 * `k * users + receiver`, so a (receiver, message) pair is one Map entry.
 */
export class DeliveryTracker {
  private readonly routes: Route[] = [];
  private readonly sentAt: number[] = [];
  private readonly acked: boolean[] = [];
  private readonly seen = new Map<number, number>();
  private readonly latency = new Samples();
  private readonly ackLatency = new Samples();
  private readonly counts = {
    acked: 0,
    ackedInWindow: 0,
    failed: 0,
    pending: 0,
    expected: 0,
    delivered: 0,
    deliveredOfAcked: 0,
    inWindow: 0,
    inSloWindow: 0,
    duplicates: 0,
    stale: 0,
  };
  windowEnd = Infinity;
  /** Added to `windowEnd` for `deliveredInSloWindow`. */
  sloGraceMs = 0;

  constructor(
    readonly tag: string,
    private readonly userCount: number,
  ) {}

  get pending(): number {
    return this.counts.pending;
  }

  /** True when every send is settled and every acknowledged message reached all of its recipients. */
  get complete(): boolean {
    return this.counts.pending === 0 && this.counts.deliveredOfAcked >= this.counts.expected;
  }

  sending(k: number, route: Route, sentAt: number): void {
    this.routes[k] = route;
    this.sentAt[k] = sentAt;
    this.counts.pending += 1;
  }

  ack(k: number, now = performance.now()): void {
    this.counts.pending -= 1;
    this.counts.acked += 1;
    if (now <= this.windowEnd) this.counts.ackedInWindow += 1;
    this.acked[k] = true;
    this.ackLatency.add(now - this.sentAt[k]);
    const route = this.routes[k];
    this.counts.expected += route.recipients.length;
    // Deliveries that overtook their ack (the sender's own copy, or a fast receiver).
    for (const r of route.recipients) if (this.seen.has(k * this.userCount + r)) this.counts.deliveredOfAcked += 1;
  }

  fail(): void {
    this.counts.pending -= 1;
    this.counts.failed += 1;
  }

  receive(receiver: number, body: string, now = performance.now()): void {
    const decoded = decodeBody(body);
    if (decoded === undefined || decoded.tag !== this.tag || this.routes[decoded.k] === undefined) {
      this.counts.stale += 1;
      return;
    }
    const key = decoded.k * this.userCount + receiver;
    const times = this.seen.get(key) ?? 0;
    this.seen.set(key, times + 1);
    if (times > 0) {
      this.counts.duplicates += 1;
      return;
    }
    this.counts.delivered += 1;
    if (this.acked[decoded.k]) this.counts.deliveredOfAcked += 1;
    if (now <= this.windowEnd) this.counts.inWindow += 1;
    if (now <= this.windowEnd + this.sloGraceMs) this.counts.inSloWindow += 1;
    this.latency.add(now - decoded.sentAt);
  }

  result(drainMs: number): DeliveryCounts {
    let lost = 0;
    for (let k = 0; k < this.routes.length; k++) {
      if (!this.acked[k]) continue;
      for (const r of this.routes[k].recipients) if (!this.seen.has(k * this.userCount + r)) lost += 1;
    }
    return {
      scheduled: this.routes.length,
      acked: this.counts.acked,
      unacked: this.counts.failed + this.counts.pending,
      expected: this.counts.expected,
      delivered: this.counts.delivered,
      deliveredInWindow: this.counts.inWindow,
      deliveredInSloWindow: this.counts.inSloWindow,
      ackedInWindow: this.counts.ackedInWindow,
      lost,
      duplicates: this.counts.duplicates,
      stale: this.counts.stale,
      latency: this.latency.summary(),
      ackLatency: this.ackLatency.summary(),
      drainMs,
    };
  }
}

export interface OpenLoopOptions {
  /** Messages per second, all publishers together. */
  rate: number;
  durationMs: number;
  /** Called for message k at (or as soon as possible after) its intended time, which it receives. */
  send(k: number, intendedAt: number): void;
  /** Called once with the window's start, before the first send. */
  onStart?(start: number): void;
  /** Stops the loop early (the resume scenario sends until every client is back). */
  signal?: AbortSignal;
}

/**
 * Sends message k at start + k/rate, by the clock. When the event loop falls
 * behind, the overdue messages go at once, still stamped with their intended
 * time, so the lag shows up as latency instead of as a lower offered rate.
 * Resolves at the end of the window; returns its [start, end].
 */
export function openLoop({ rate, durationMs, send, onStart, signal }: OpenLoopOptions): Promise<{ start: number; end: number }> {
  const total = Math.floor((rate * durationMs) / 1000);
  const interval = 1000 / rate;
  const start = performance.now();
  let end = start + durationMs;
  onStart?.(start);
  let k = 0;
  return new Promise((resolve) => {
    const tick = () => {
      const now = performance.now();
      const due = Math.min(total, Math.floor((now - start) / interval) + 1);
      while (k < due && !signal?.aborted) {
        send(k, start + k * interval);
        k += 1;
      }
      if (signal?.aborted) end = Math.min(end, now);
      if ((k >= total && now >= end) || signal?.aborted) return resolve({ start, end });
      const next = k < total ? start + k * interval : end;
      setTimeout(tick, Math.max(0, Math.min(10, next - performance.now())));
    };
    tick();
  });
}
