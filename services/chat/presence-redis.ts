import type { UserRef } from "../db/schema.js";
import type { Redis } from "ioredis";
import { InFlight } from "../lib/in-flight.js";
import { presenceAnnouncedKey, presenceLeavingKey, presencePodKey, presencePodPrefix, presencePodsKey, presenceUsersKey } from "../lib/keys.js";
import { Alarm, type Clock, systemClock } from "../lib/clock.js";
import type { Logger } from "../lib/logger.js";
import { loadScript, type RedisScript } from "../lib/redis.js";
import { DEFAULT_OFFLINE_GRACE_MS, notifyListeners, type Presence, type PresenceListener } from "./presence.js";

const script = (name: string, keys: number, redis: Redis) => loadScript(redis, new URL(`./lua/${name}.lua`, import.meta.url), keys);
const member = (user: UserRef) => `${user.id}:${user.username}`;
const parse = (value: string): UserRef => {
  const colon = value.indexOf(":");
  return { id: Number(value.slice(0, colon)), username: value.slice(colon + 1) };
};

export interface RedisPresenceOptions {
  /** The command connection. */
  redis: Redis;
  /** This pod's name: its lease and its record. A new process under an old name takes the record over. */
  pod: string;
  /** A pod that stops heartbeating stops counting this many ms after its last heartbeat. */
  ttlMs: number;
  /** How often the pod renews its lease, reaps lapsed pods and reconciles; well under `ttlMs`. */
  heartbeatMs: number;
  /** A user whose last stream closed normally is announced offline this many ms later, unless back. Default 5000. */
  graceMs?: number;
  /** Default: the system clock. */
  clock?: Clock;
  log: Logger;
}

/**
 * Cluster-wide presence without a counter a dead pod cannot decrement. Each
 * pod holds a lease in a sorted set and renews it every heartbeat; its streams
 * are counted in a hash of its own and in one cluster-wide hash (the truth,
 * whose HLEN is the online count). Every heartbeat also repairs the pod's own
 * record to what it knows, reaps pods whose lease lapsed, and reconciles what
 * peers were told with the truth (presence-reconcile.lua): each change is
 * claimed in one script, so one pod announces it. A SIGKILLed pod's users are
 * announced offline within TTL plus one heartbeat; a normal close, after the
 * grace (plus one heartbeat should this pod die meanwhile).
 */
export class RedisPresence implements Presence {
  /** This pod's streams per member: the truth the heartbeat writes back. */
  private readonly local = new Map<string, number>();
  private readonly listeners: PresenceListener[] = [];
  private readonly announcing = new InFlight();
  private readonly addScript: RedisScript;
  private readonly removeScript: RedisScript;
  private readonly heartbeatScript: RedisScript;
  private readonly reconcileScript: RedisScript;
  private readonly leaveScript: RedisScript;
  private readonly podKey: string;
  private readonly redis: Redis;
  private readonly pod: string;
  private readonly ttlMs: number;
  private readonly heartbeatMs: number;
  private readonly graceMs: number;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly alarm: Alarm;
  /** The runs of `tick`, one after another; `queued` is the one not started yet, which later requests join. */
  private chain: Promise<void> = Promise.resolve();
  private queued: Promise<void> | undefined;
  private closed = false;

  /**
   * Takes this pod's record over (repairing it to an empty view, which is what
   * a process restarted under the same name holds), reaps lapsed pods, and
   * starts the heartbeat. Changes are claimed from the first `onChange` on.
   */
  static async start(options: RedisPresenceOptions): Promise<RedisPresence> {
    const presence = new RedisPresence(options);
    await presence.run();
    return presence;
  }

  private constructor(options: RedisPresenceOptions) {
    this.redis = options.redis;
    this.pod = options.pod;
    this.ttlMs = options.ttlMs;
    this.heartbeatMs = options.heartbeatMs;
    this.graceMs = options.graceMs ?? DEFAULT_OFFLINE_GRACE_MS;
    this.clock = options.clock ?? systemClock;
    this.alarm = new Alarm(this.clock, () => void this.run());
    this.log = options.log.child({ component: "presence" });
    this.podKey = presencePodKey(this.pod);
    this.addScript = script("presence-add", 5, this.redis);
    this.removeScript = script("presence-remove", 3, this.redis);
    this.heartbeatScript = script("presence-heartbeat", 4, this.redis);
    this.reconcileScript = script("presence-reconcile", 4, this.redis);
    this.leaveScript = script("presence-leave", 3, this.redis);
  }

  async add(user: UserRef): Promise<void> {
    const key = member(user);
    this.local.set(key, (this.local.get(key) ?? 0) + 1);
    const claim = this.listeners.length > 0 ? "1" : "0";
    const claimed = await this.addScript(
      [this.podKey, presenceUsersKey, presencePodsKey, presenceAnnouncedKey, presenceLeavingKey],
      [key, this.pod, this.clock.now() + this.ttlMs, claim],
    );
    if (claimed === 1) await this.announce(user, true);
  }

  async remove(user: UserRef): Promise<void> {
    const key = member(user);
    const left = (this.local.get(key) ?? 0) - 1;
    if (left > 0) this.local.set(key, left);
    else this.local.delete(key);
    const now = this.clock.now();
    const gone = await this.removeScript([this.podKey, presenceUsersKey, presenceLeavingKey], [key, now]);
    // A grace has started: reconcile when it ends (if this pod dies meanwhile, another pod's heartbeat does).
    if (gone === 1) this.arm(now + this.graceMs);
  }

  async onlineUsernames(): Promise<string[]> {
    return (await this.redis.smembers(presenceAnnouncedKey)).map((m) => parse(m).username).sort();
  }

  async onlineCount(): Promise<number> {
    return this.redis.hlen(presenceUsersKey);
  }

  onChange(listener: PresenceListener): void {
    this.listeners.push(listener);
    // What happened before anyone could announce it (a repaired record, a lapsed pod) is claimed now.
    this.arm(this.clock.now());
  }

  /** Resolves once the reconcile under way, if any, has finished and the changes it claimed were announced. */
  async idle(): Promise<void> {
    await this.chain;
    await this.announcing.settled();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.alarm.cancel();
    await this.chain;
    this.local.clear();
    await this.leaveScript([presencePodsKey, presenceUsersKey, presenceLeavingKey], [presencePodPrefix, this.pod, this.clock.now()]);
    await this.announcing.settled();
  }

  /** Queues a tick after the one under way; requests made before it starts share it. */
  private run(): Promise<void> {
    if (this.queued !== undefined) return this.queued;
    const next = this.chain.then(() => {
      this.queued = undefined;
      return this.tick();
    });
    this.queued = next;
    this.chain = next;
    return next;
  }

  /** Renews this pod's lease (repairing its record), then reaps lapsed pods and claims what peers must be told. */
  private async tick(): Promise<void> {
    if (this.closed) return;
    const now = this.clock.now();
    try {
      const pairs = [...this.local].flat();
      const repaired = await this.heartbeatScript(
        [presencePodsKey, this.podKey, presenceUsersKey, presenceLeavingKey],
        [this.pod, now + this.ttlMs, ...pairs],
      );
      if (typeof repaired === "number" && repaired > 0) {
        this.log.info({ users: repaired }, "presence record repaired: users this pod does not hold are offline");
      }
      const claim = this.listeners.length > 0 ? "1" : "0";
      const [online, offline, nextDue] = (await this.reconcileScript(
        [presencePodsKey, presenceUsersKey, presenceAnnouncedKey, presenceLeavingKey],
        [now, presencePodPrefix, this.graceMs, claim],
      )) as [string[], string[], number];
      // Not awaited: a slow announcement must never delay the next heartbeat.
      for (const value of online) this.announcing.track(this.announce(parse(value), true));
      for (const value of offline) this.announcing.track(this.announce(parse(value), false));
      if (nextDue >= 0) this.arm(nextDue);
    } catch (err) {
      this.log.warn({ err }, "presence heartbeat failed; retrying on the next one");
    } finally {
      this.arm(this.clock.now() + this.heartbeatMs);
    }
  }

  private announce(user: UserRef, online: boolean): Promise<void> {
    this.log.debug({ username: user.username, online }, "presence change claimed");
    return notifyListeners(this.listeners, user, online, this.log);
  }

  /** Makes sure a tick runs at `at` (ms) or earlier. */
  private arm(at: number): void {
    if (!this.closed) this.alarm.at(at);
  }
}
