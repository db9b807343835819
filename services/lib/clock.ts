// Time as code that waits or schedules sees it. Production passes nothing and
// gets `systemClock`; tests pass a fake clock (test/helpers/fake-clock.ts) and
// move it forward themselves, so nothing in a test sleeps on real time.

/** What a component reads the time from and schedules its timers on. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Runs `callback` once after `ms` milliseconds; returns a handle for `clearTimeout`. */
  setTimeout(callback: () => void, ms: number): unknown;
  /** Cancels a timer from `setTimeout`; a handle that already fired or was cleared is ignored. */
  clearTimeout(handle: unknown): void;
}

/**
 * Wall-clock time, and timers that do not keep the process alive by
 * themselves (`unref`): background work never delays an exit.
 */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms).unref(),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/**
 * Resolves after `ms` milliseconds of `clock` time, or at once when `signal`
 * aborts (it never rejects). With `systemClock` the wait does not hold the
 * process open; a caller whose wait is the process's whole job uses a clock
 * whose timers do.
 */
export function delay(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) {
      resolve();
      return;
    }
    const done = () => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    };
    const onAbort = () => {
      clock.clearTimeout(handle);
      done();
    };
    const handle = clock.setTimeout(done, Math.max(0, ms));
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * One timer that runs `callback` at the earliest time asked of it: `at(ms)`
 * moves it earlier, never later. `cancel()` stops it. For a loop that must
 * wake up for the nearest of several deadlines (presence's grace and lease).
 */
export class Alarm {
  private timer: { handle: unknown; at: number } | undefined;

  constructor(
    private readonly clock: Clock,
    private readonly callback: () => void,
  ) {}

  /** Makes sure the callback runs at `at` (epoch ms) or earlier. */
  at(at: number): void {
    if (this.timer !== undefined && this.timer.at <= at) return;
    this.cancel();
    const handle = this.clock.setTimeout(
      () => {
        this.timer = undefined;
        this.callback();
      },
      Math.max(0, at - this.clock.now()),
    );
    this.timer = { handle, at };
  }

  cancel(): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer.handle);
    this.timer = undefined;
  }
}
