// Capacity at an SLO: the highest offered rate at which p99 stays at or under
// SLO_P99_MS, at least SLO_DELIVERED of the offered deliveries arrive within
// the window, and no stream is ended for being slow. A ramp finds the first
// rate that misses it, then bisection narrows the gap to the last that met it.
import { SLO_DELIVERED, SLO_P99_MS, type StepResult } from "./session.js";

/** Why a step missed the SLO, or undefined when it met it. */
export function sloMiss(step: StepResult): string | undefined {
  const misses: string[] = [];
  const p99 = step.counts.latency.p99;
  if (!(p99 <= SLO_P99_MS)) misses.push(`p99 ${Number.isFinite(p99) ? p99.toFixed(0) : "n/a"} ms`);
  if (!(step.sloDeliveredFraction >= SLO_DELIVERED)) misses.push(`delivered ${(step.sloDeliveredFraction * 100).toFixed(1)}%`);
  if (step.endedSlow > 0) misses.push(`${step.endedSlow} streams ended as slow`);
  return misses.length > 0 ? misses.join(", ") : undefined;
}

export interface CapacityPoint {
  rate: number;
  p99: number;
  deliveredFraction: number;
  /** The step missed the SLO (the chart draws it hollow). */
  saturated: boolean;
  /** The load generator saturated during the step. */
  invalid: boolean;
  miss?: string;
}

export interface CapacitySearchOptions {
  /** Offered rates tried in order until one misses the SLO. */
  ramp: number[];
  /** Bisection steps between the last rate that met the SLO and the first that missed it. */
  bisections: number;
}

export interface CapacityResult {
  /** Highest offered rate (messages/s) that met the SLO; 0 when even the first missed it. */
  capacity: number;
  /** The search never found a rate that missed: the capacity is at least `capacity`. */
  lowerBound: boolean;
  /** Deliveries/s inside the window at the capacity rate. */
  deliveriesPerSec: number;
  /** Every step, in the order run. */
  points: CapacityPoint[];
}

/**
 * Runs `step(rate)` up the ramp, stopping at the first miss, then bisects
 * (geometric midpoints, whole rates) between the last pass and that miss.
 */
export async function findCapacity(
  step: (rate: number) => Promise<StepResult>,
  options: CapacitySearchOptions,
  onPoint: (point: CapacityPoint, result: StepResult) => void = () => undefined,
): Promise<CapacityResult> {
  const points: CapacityPoint[] = [];
  let pass: StepResult | undefined;
  let fail: number | undefined;
  const probe = async (rate: number): Promise<boolean> => {
    const result = await step(rate);
    const miss = sloMiss(result);
    const point = {
      rate,
      p99: result.counts.latency.p99,
      deliveredFraction: result.sloDeliveredFraction,
      saturated: miss !== undefined,
      invalid: result.invalid,
      miss,
    };
    points.push(point);
    onPoint(point, result);
    if (miss === undefined) pass = result;
    else fail = rate;
    return miss === undefined;
  };
  for (const rate of options.ramp) if (!(await probe(rate))) break;
  for (let i = 0; i < options.bisections && fail !== undefined; i++) {
    const lo = pass?.rate ?? 0;
    const mid = Math.round(lo > 0 ? Math.sqrt(lo * fail) : fail / 2);
    if (mid <= lo || mid >= fail) break;
    await probe(mid);
  }
  return {
    capacity: pass?.rate ?? 0,
    lowerBound: fail === undefined,
    deliveriesPerSec: pass?.deliveriesPerSec ?? 0,
    points,
  };
}
