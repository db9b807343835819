// Capacity at an SLO: the highest offered rate at which p99 stays at or under
// SLO_P99_MS, at least SLO_DELIVERED of the offered deliveries arrive within
// the window, and no stream is ended for being slow. A ramp finds the first
// rate that misses it, then bisection narrows the gap to the last that met it.
import type { ScenarioName } from "./workload.js";
import { SLO_DELIVERED, SLO_P99_MS, type Session, type StepOptions, type StepResult } from "./session.js";

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

/** What every run of one benchmark shares: the sending window, the drain bound and the body size. */
export type StepSettings = Pick<StepOptions, "durationMs" | "drainMs" | "bodyBytes">;

export interface SessionSearchOptions extends CapacitySearchOptions {
  settings: StepSettings;
  /** A tag unique in the whole benchmark, for each run. */
  nextTag: () => string;
  /** Runs before each measured step: waits for the servers to go idle, so one step's backlog does not bill the next. */
  beforeStep: () => Promise<void>;
}

/**
 * The capacity search on an open session: first a short unmeasured run at
 * the ramp's first rate, so that the first measured step does not pay for
 * warming up (JIT, pools); then `findCapacity`, each step after `beforeStep`.
 * `onPoint` sees every measured step.
 */
export async function searchCapacity(
  session: Session,
  scenario: ScenarioName,
  options: SessionSearchOptions,
  onPoint: (point: CapacityPoint, result: StepResult) => void,
): Promise<CapacityResult> {
  const { settings, nextTag, beforeStep } = options;
  await session.run({ scenario, rate: options.ramp[0], ...settings, durationMs: 1_000, drainMs: 1_000, tag: nextTag() });
  return findCapacity(
    async (rate) => {
      await beforeStep();
      return session.run({ scenario, rate, ...settings, tag: nextTag() });
    },
    options,
    onPoint,
  );
}
