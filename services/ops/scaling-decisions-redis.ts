import type { Redis } from "ioredis";
import { opsLastDecisionKey, opsScalingDecisionsKey } from "../lib/keys.js";
import { loadScript, type RedisScript } from "../lib/redis.js";
import { DECISIONS_KEPT, decisionKey, isListed, type ScalingDecisionRecord, type ScalingDecisions } from "./scaling-decisions.js";

/**
 * The controller's reports in Redis, so that any scaler replica serves them:
 * the listed ones in a list capped at DECISIONS_KEPT, the last one in a hash,
 * both written by one script (lua/decision-record.lua).
 */
export class RedisScalingDecisions implements ScalingDecisions {
  private readonly recordScript: RedisScript;

  constructor(private readonly redis: Redis) {
    this.recordScript = loadScript(redis, new URL("./lua/decision-record.lua", import.meta.url), 2);
  }

  async record(decision: ScalingDecisionRecord): Promise<void> {
    await this.recordScript(
      [opsScalingDecisionsKey, opsLastDecisionKey],
      [JSON.stringify(decision), decisionKey(decision), isListed(decision) ? "1" : "0", DECISIONS_KEPT],
    );
  }

  async recent(): Promise<ScalingDecisionRecord[]> {
    const values = await this.redis.lrange(opsScalingDecisionsKey, 0, DECISIONS_KEPT - 1);
    return values.map((value) => JSON.parse(value) as ScalingDecisionRecord);
  }

  async last(): Promise<ScalingDecisionRecord | undefined> {
    const value = await this.redis.hget(opsLastDecisionKey, "decision");
    return value === null ? undefined : (JSON.parse(value) as ScalingDecisionRecord);
  }
}
