import { DECISIONS_KEPT, decisionKey, isListed, type ScalingDecisionRecord, type ScalingDecisions } from "./scaling-decisions.js";

/** The embedded mode's store: one process, nothing shared. */
export class MemoryScalingDecisions implements ScalingDecisions {
  private readonly listed: ScalingDecisionRecord[] = [];
  private latest: ScalingDecisionRecord | undefined;

  async record(decision: ScalingDecisionRecord): Promise<void> {
    const previous = this.latest;
    this.latest = { ...decision };
    if (isListed(decision) && (previous === undefined || decisionKey(previous) !== decisionKey(decision))) {
      this.listed.unshift({ ...decision });
      this.listed.length = Math.min(this.listed.length, DECISIONS_KEPT);
    }
  }

  async recent(): Promise<ScalingDecisionRecord[]> {
    return this.listed.map((d) => ({ ...d }));
  }

  async last(): Promise<ScalingDecisionRecord | undefined> {
    return this.latest && { ...this.latest };
  }
}
