import { type Clock, delay, systemClock } from "./clock.js";

/** One dependency's cheapest round-trip: `SELECT 1` for Postgres, `PING` for Redis. */
export interface Probe {
  /** A fixed name, used as a label value (postgres, redis). */
  name: string;
  /** Resolves when the dependency answered; rejects (or outlasts `timeoutMs`) when it did not. */
  check(): Promise<unknown>;
}

export interface ProbeOptions {
  /** Ends the loop; the drain aborts it. */
  signal: AbortSignal;
  /** Told each probe's outcome: true when it answered within `timeoutMs`. */
  onResult(name: string, up: boolean): void;
  /** Between rounds, on `clock`. Default 5000 ms. */
  intervalMs?: number;
  /** A probe that has not answered after this counts as down. Default 2000 ms, real time. */
  timeoutMs?: number;
  /** Schedules the rounds. Default the system clock. */
  clock?: Clock;
}

/**
 * Probes every dependency at once, then every `intervalMs`, until `signal`
 * aborts: what `parley_dependency_up` reports, so that an idle pod still
 * notices an outage (no traffic, no failing calls). A round waits for its
 * slowest probe, so rounds never overlap.
 */
export function startProbes(probes: Probe[], options: ProbeOptions): void {
  const { signal, onResult, intervalMs = 5_000, timeoutMs = 2_000, clock = systemClock } = options;
  if (probes.length === 0) return;
  const round = () =>
    Promise.all(
      probes.map(async (probe) => {
        const up = await answersWithin(probe, timeoutMs);
        if (!signal.aborted) onResult(probe.name, up);
      }),
    );
  void (async () => {
    while (!signal.aborted) {
      await round();
      await delay(clock, intervalMs, signal);
    }
  })();
}

async function answersWithin(probe: Probe, timeoutMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs);
    timer.unref();
  });
  try {
    return await Promise.race([probe.check().then(() => true as const), timedOut]);
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}
