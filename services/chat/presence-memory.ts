import type { UserRef } from "../db/schema.js";
import { Alarm, type Clock, systemClock } from "../lib/clock.js";
import type { Logger } from "../lib/logger.js";
import { DEFAULT_OFFLINE_GRACE_MS, notifyListeners, type Presence, type PresenceListener } from "./presence.js";

export interface MemoryPresenceOptions {
  log: Logger;
  /** A user whose last stream closed is announced offline this many ms later, unless they are back. Default 5000. */
  graceMs?: number;
  /** Default: the system clock. */
  clock?: Clock;
}

/**
 * The embedded mode's presence: one process holds every stream, so there are
 * no leases; only the offline grace is timed.
 */
export class MemoryPresence implements Presence {
  /** The truth: each online user's open streams. */
  private readonly streams = new Map<string, { user: UserRef; ids: Set<string> }>();
  /** What listeners were last told: the users announced online. */
  private readonly announced = new Map<string, UserRef>();
  /** When each user's last stream closed, while they wait out the grace. */
  private readonly leaving = new Map<string, number>();
  private readonly listeners: PresenceListener[] = [];
  private readonly graceMs: number;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly alarm: Alarm;
  private reconciling: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(options: MemoryPresenceOptions) {
    this.log = options.log.child({ component: "presence" });
    this.graceMs = options.graceMs ?? DEFAULT_OFFLINE_GRACE_MS;
    this.clock = options.clock ?? systemClock;
    this.alarm = new Alarm(this.clock, () => {
      this.reconciling = this.reconcile();
    });
  }

  async add(user: UserRef, streamId: string): Promise<void> {
    let entry = this.streams.get(user.username);
    if (entry === undefined) {
      entry = { user, ids: new Set() };
      this.streams.set(user.username, entry);
    }
    entry.ids.add(streamId);
    this.leaving.delete(user.username);
    if (this.listeners.length === 0 || this.announced.has(user.username)) return;
    this.announced.set(user.username, user);
    await notifyListeners(this.listeners, user, true, this.log);
  }

  async remove(user: UserRef, streamId: string): Promise<void> {
    const entry = this.streams.get(user.username);
    if (entry === undefined || !entry.ids.delete(streamId) || entry.ids.size > 0) return;
    this.streams.delete(user.username);
    const now = this.clock.now();
    this.leaving.set(user.username, now);
    this.arm(now + this.graceMs);
  }

  async onlineUsernames(): Promise<string[]> {
    return [...this.announced.keys()].sort();
  }

  async onlineCount(): Promise<number> {
    return this.streams.size;
  }

  onChange(listener: PresenceListener): void {
    this.listeners.push(listener);
    this.arm(this.clock.now());
  }

  async idle(): Promise<void> {
    await this.reconciling;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.alarm.cancel();
    this.streams.clear();
    this.leaving.clear();
  }

  /** Announces what differs between the truth and what was announced; offline only once the grace is over. */
  private async reconcile(): Promise<void> {
    if (this.closed || this.listeners.length === 0) return;
    const now = this.clock.now();
    const changes: [UserRef, boolean][] = [];
    for (const [username, { user }] of this.streams) {
      if (this.announced.has(username)) continue;
      this.announced.set(username, user);
      changes.push([user, true]);
    }
    for (const [username, user] of this.announced) {
      if (this.streams.has(username)) continue;
      const closedAt = this.leaving.get(username);
      if (closedAt !== undefined && closedAt + this.graceMs > now) {
        this.arm(closedAt + this.graceMs);
        continue;
      }
      this.announced.delete(username);
      this.leaving.delete(username);
      changes.push([user, false]);
    }
    for (const username of this.leaving.keys()) {
      if (!this.announced.has(username)) this.leaving.delete(username);
    }
    await Promise.all(changes.map(([user, online]) => notifyListeners(this.listeners, user, online, this.log)));
  }

  /** Makes sure a reconcile runs at `at` (ms) or earlier. */
  private arm(at: number): void {
    if (!this.closed) this.alarm.at(at);
  }
}
