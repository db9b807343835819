import type { ChainableCommander, Redis } from "ioredis";
import { type Clock, systemClock } from "../lib/clock.js";
import { opsPodReportKey, opsPodsKey } from "../lib/keys.js";
import type { PodReport, PodReports } from "./pod-reports.js";

/**
 * Pod reports in Redis, shared by every pod: one string key per pod holding
 * its report as JSON, with a TTL (PX), and a sorted set of the pod names
 * scored by when their report lapses (ms), to list them without SCAN. A name
 * whose score has passed is dropped from the set at each publish and read.
 */
export class RedisPodReports implements PodReports {
  constructor(
    private readonly redis: Redis,
    private readonly clock: Clock = systemClock,
  ) {}

  async publish(report: PodReport, ttlMs: number): Promise<void> {
    const now = this.clock.now();
    // Lapsed names are dropped here too, so that the set stays small even when nobody reads the reports.
    await execAll(
      this.redis
        .multi()
        .set(opsPodReportKey(report.pod), JSON.stringify(report), "PX", ttlMs)
        .zadd(opsPodsKey, now + ttlMs, report.pod)
        .zremrangebyscore(opsPodsKey, "-inf", now),
    );
  }

  async list(): Promise<PodReport[]> {
    const now = this.clock.now();
    const [, live] = await Promise.all([
      this.redis.zremrangebyscore(opsPodsKey, "-inf", now),
      this.redis.zrangebyscore(opsPodsKey, `(${now}`, "+inf"),
    ]);
    if (live.length === 0) return [];
    const values = await this.redis.mget(live.map(opsPodReportKey));
    const reports: PodReport[] = [];
    for (const value of values) if (value !== null) reports.push(JSON.parse(value) as PodReport);
    return reports.sort((a, b) => a.pod.localeCompare(b.pod));
  }

  async remove(pod: string): Promise<void> {
    await execAll(this.redis.multi().del(opsPodReportKey(pod)).zrem(opsPodsKey, pod));
  }
}

/** Runs a MULTI and rejects with the first command's error: ioredis resolves a transaction's failed commands as values. */
async function execAll(transaction: ChainableCommander): Promise<void> {
  const results = await transaction.exec();
  const failed = results?.find(([err]) => err !== null);
  if (failed) throw failed[0];
}
