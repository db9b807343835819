// A fake clock (@sinonjs/fake-timers) seen as the `Clock` the services take.
// Only the code under test gets it; the test's own timers, the database's and
// the network's stay real, and no global is replaced.
import FakeTimers from "@sinonjs/fake-timers";
import type { Clock } from "../../services/lib/clock.js";

/** The fake clock itself: `tick`/`tickAsync` move it, `now` reads it, `countTimers()` counts what is scheduled. */
export type FakeClock = ReturnType<typeof FakeTimers.createClock>;

/** The `Clock` view of `fake`: its time and its timers. */
export function clockOf(fake: FakeClock): Clock {
  return {
    now: () => fake.now,
    setTimeout: (callback, ms) => fake.setTimeout(callback, ms),
    clearTimeout: (handle) => fake.clearTimeout(handle as ReturnType<FakeClock["setTimeout"]>),
  };
}

/** A fresh fake clock standing at `start` (epoch ms; default a fixed instant), with its `Clock` view. */
export function fakeClock(start = 1_700_000_000_000): { fake: FakeClock; clock: Clock } {
  const fake = FakeTimers.createClock(start);
  return { fake, clock: clockOf(fake) };
}
