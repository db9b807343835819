import type { Redis } from "ioredis";
import { presencePodKey, presencePodPrefix, presencePodsKey, presenceUsersKey } from "../lib/keys.js";
import type { Logger } from "../lib/logger.js";
import { loadScript, type RedisScript } from "../lib/redis.js";
import type { Presence, PresenceUser } from "./presence.js";

const script = (name: string, keys: number, redis: Redis) => loadScript(redis, new URL(`./lua/${name}.lua`, import.meta.url), keys);
const member = (user: PresenceUser) => `${user.id}:${user.username}`;
const parse = (value: string): PresenceUser => {
  const colon = value.indexOf(":");
  return { id: Number(value.slice(0, colon)), username: value.slice(colon + 1) };
};

/**
 * Cluster-wide presence without a counter a dead pod cannot decrement. Each
 * pod holds a lease in a sorted set and renews it every third of the TTL; its
 * streams are counted in a hash of its own and in one cluster-wide hash (whose
 * HLEN is the online count). Every pod reaps pods whose lease lapsed, removing
 * their streams, so a SIGKILLed pod's users stop counting within TTL plus one
 * heartbeat.
 */
export class RedisPresence implements Presence {
  /** This pod's streams per member: the truth the heartbeat writes back. */
  private readonly local = new Map<string, number>();
  private readonly expiredListeners: ((user: PresenceUser) => void)[] = [];
  private readonly addScript: RedisScript;
  private readonly removeScript: RedisScript;
  private readonly heartbeatScript: RedisScript;
  private readonly reapScript: RedisScript;
  private readonly timer: NodeJS.Timeout;
  private readonly podKey: string;

  constructor(
    private readonly redis: Redis,
    private readonly pod: string,
    private readonly ttlMs: number,
    private readonly log: Logger,
  ) {
    this.podKey = presencePodKey(pod);
    this.addScript = script("presence-add", 3, redis);
    this.removeScript = script("presence-remove", 2, redis);
    this.heartbeatScript = script("presence-heartbeat", 3, redis);
    this.reapScript = script("presence-reap", 2, redis);
    this.timer = setInterval(() => void this.tick(), Math.max(1000, Math.floor(ttlMs / 3)));
    this.timer.unref();
  }

  async add(user: PresenceUser): Promise<boolean> {
    const key = member(user);
    this.local.set(key, (this.local.get(key) ?? 0) + 1);
    const cameOnline = await this.addScript([this.podKey, presenceUsersKey, presencePodsKey], [key, this.pod, this.leaseEnd()]);
    return cameOnline === 1;
  }

  async remove(user: PresenceUser): Promise<boolean> {
    const key = member(user);
    const left = (this.local.get(key) ?? 0) - 1;
    if (left > 0) this.local.set(key, left);
    else this.local.delete(key);
    return (await this.removeScript([this.podKey, presenceUsersKey], [key])) === 1;
  }

  async onlineUsernames(): Promise<string[]> {
    return (await this.redis.hkeys(presenceUsersKey)).map((m) => parse(m).username).sort();
  }

  async onlineCount(): Promise<number> {
    return this.redis.hlen(presenceUsersKey);
  }

  onExpired(listener: (user: PresenceUser) => void): void {
    this.expiredListeners.push(listener);
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    this.local.clear();
    await this.reapScript([presencePodsKey, presenceUsersKey], [0, presencePodPrefix, this.pod]);
  }

  /** Renews this pod's lease (repairing its record), then reaps pods whose lease lapsed. */
  private async tick(): Promise<void> {
    try {
      const pairs = [...this.local].flatMap(([key, count]) => [key, count]);
      await this.heartbeatScript([presencePodsKey, this.podKey, presenceUsersKey], [this.pod, this.leaseEnd(), ...pairs]);
      const offline = (await this.reapScript([presencePodsKey, presenceUsersKey], [Date.now(), presencePodPrefix])) as string[];
      for (const value of offline) {
        const user = parse(value);
        this.log.info({ username: user.username }, "user's pod stopped heartbeating; now offline");
        for (const listener of this.expiredListeners) listener(user);
      }
    } catch (err) {
      this.log.warn({ err }, "presence heartbeat failed; retrying on the next tick");
    }
  }

  private leaseEnd(): number {
    return Date.now() + this.ttlMs;
  }
}
