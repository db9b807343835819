import test from "ava";
import { fakeClock } from "../../test/helpers/fake-clock.js";
import { Alarm, delay } from "./clock.js";

test("an Alarm rings once, at the earliest time asked; a later time never postpones it; cancel stops it", (t) => {
  const { fake, clock } = fakeClock(0);
  const rang: number[] = [];
  const alarm = new Alarm(clock, () => rang.push(clock.now()));
  alarm.at(500);
  alarm.at(800);
  alarm.at(300);
  fake.tick(299);
  t.deepEqual(rang, []);
  fake.tick(1);
  t.deepEqual(rang, [300]);
  fake.tick(1_000);
  t.deepEqual(rang, [300], "the times it moved past are not kept");
  alarm.at(1_500);
  alarm.cancel();
  fake.tick(1_000);
  t.deepEqual(rang, [300]);
});

test("delay resolves after its time on the clock, or at once when its signal aborts", async (t) => {
  const { fake, clock } = fakeClock(0);
  let done = false;
  const waiting = delay(clock, 1_000).then(() => {
    done = true;
  });
  await fake.tickAsync(999);
  t.false(done);
  await fake.tickAsync(1);
  await waiting;
  t.true(done);
  const controller = new AbortController();
  const aborted = delay(clock, 60_000, controller.signal);
  controller.abort();
  await aborted;
  t.is(fake.countTimers(), 0);
});
