// The sequencer on a fake clock: a test moves time itself (`fake.tickAsync`),
// so a gap's wait is exact and nothing sleeps.
import test from "ava";
import { fakeClock } from "../../test/helpers/fake-clock.js";
import { Sequencer, type GapFiller, type Sequenced } from "./sequencer.js";

const WAIT_MS = 20;
const m = (seq: number, conversationId = "c"): Sequenced => ({ conversationId, seq });

/** A sequencer on a fake clock that records what it emits, what it was asked to fill, and fill errors. */
function setup(fill: GapFiller<Sequenced> = async () => []) {
  const { fake, clock } = fakeClock();
  const emitted: string[] = [];
  const fills: [string, number, number][] = [];
  const errors: unknown[] = [];
  const sequencer = new Sequencer<Sequenced>(
    (item) => emitted.push(`${item.conversationId}:${item.seq}`),
    (conversationId, after, before) => {
      fills.push([conversationId, after, before]);
      return fill(conversationId, after, before);
    },
    (err) => errors.push(err),
    { waitMs: WAIT_MS, clock },
  );
  return { sequencer, emitted, fills, errors, fake };
}

test("delivers items that arrive in order at once", (t) => {
  const { sequencer, emitted } = setup();
  for (const seq of [1, 2, 3]) sequencer.offer(m(seq));
  t.deepEqual(emitted, ["c:1", "c:2", "c:3"]);
  t.is(sequencer.position("c"), 3);
});

test("drops duplicates and seqs at or below the position, without asking for a fill", async (t) => {
  const { sequencer, emitted, fills, fake } = setup();
  sequencer.offer(m(1));
  sequencer.offer(m(2));
  sequencer.offer(m(2));
  sequencer.offer(m(1));
  t.deepEqual(emitted, ["c:1", "c:2"]);
  await fake.tickAsync(WAIT_MS * 3);
  t.deepEqual(fills, []);
});

test("conversations have separate positions", (t) => {
  const { sequencer, emitted } = setup();
  sequencer.offer(m(1, "a"));
  sequencer.offer(m(1, "b"));
  sequencer.offer(m(2, "a"));
  t.deepEqual(emitted, ["a:1", "b:1", "a:2"]);
});

test("holds out-of-order items and releases them in order when the gap closes", async (t) => {
  const { sequencer, emitted, fills, fake } = setup();
  sequencer.offer(m(1));
  sequencer.offer(m(4));
  sequencer.offer(m(3));
  t.deepEqual(emitted, ["c:1"]);
  await fake.tickAsync(WAIT_MS - 1);
  sequencer.offer(m(2));
  t.deepEqual(emitted, ["c:1", "c:2", "c:3", "c:4"]);
  await fake.tickAsync(WAIT_MS * 3);
  t.deepEqual(fills, [], "a gap closed within the wait is never filled");
});

test("a held duplicate is delivered once", (t) => {
  const { sequencer, emitted } = setup();
  sequencer.offer(m(2));
  sequencer.offer(m(2));
  sequencer.offer(m(1));
  t.deepEqual(emitted, ["c:1", "c:2"]);
});

test("a gap that stays open is filled by the filler once waitMs has passed, not before", async (t) => {
  const { sequencer, emitted, fills, fake } = setup(async (conversationId, after, before) =>
    Array.from({ length: before - after - 1 }, (_, i) => m(after + 1 + i, conversationId)),
  );
  sequencer.offer(m(1));
  sequencer.offer(m(5));
  await fake.tickAsync(WAIT_MS / 2);
  sequencer.offer(m(6)); // a later arrival does not restart the wait
  await fake.tickAsync(WAIT_MS / 2 - 1);
  t.deepEqual(fills, [], "still waiting 1 ms before waitMs");
  t.deepEqual(emitted, ["c:1"]);
  await fake.tickAsync(1);
  t.deepEqual(fills, [["c", 1, 5]]);
  t.deepEqual(emitted, ["c:1", "c:2", "c:3", "c:4", "c:5", "c:6"]);
});

test("a gap that opens again after a fill waits again before the next fill", async (t) => {
  const { sequencer, emitted, fills, fake } = setup(async (conversationId, after, before) =>
    Array.from({ length: before - after - 1 }, (_, i) => m(after + 1 + i, conversationId)),
  );
  sequencer.offer(m(2));
  await fake.tickAsync(WAIT_MS);
  t.deepEqual(emitted, ["c:1", "c:2"]);
  sequencer.offer(m(4));
  await fake.tickAsync(WAIT_MS - 1);
  t.deepEqual(fills, [["c", 0, 2]]);
  await fake.tickAsync(1);
  t.deepEqual(fills, [
    ["c", 0, 2],
    ["c", 2, 4],
  ]);
  t.deepEqual(emitted, ["c:1", "c:2", "c:3", "c:4"]);
});

test("items offered while a fill is running are held until it ends", async (t) => {
  let finish!: (items: Sequenced[]) => void;
  const { sequencer, emitted, fills, fake } = setup(
    () =>
      new Promise((resolve) => {
        finish = resolve;
      }),
  );
  sequencer.offer(m(3));
  await fake.tickAsync(WAIT_MS);
  t.is(fills.length, 1);
  sequencer.offer(m(1)); // would be next, but the fill owns the gap
  sequencer.offer(m(4));
  t.deepEqual(emitted, []);
  finish([m(1), m(2)]);
  await fake.tickAsync(0);
  t.deepEqual(emitted, ["c:1", "c:2", "c:3", "c:4"]);
});

test("a gap the filler cannot find is skipped rather than stalling", async (t) => {
  const { sequencer, emitted, fake } = setup(async () => []);
  sequencer.offer(m(3));
  await fake.tickAsync(WAIT_MS);
  t.deepEqual(emitted, ["c:3"]);
  t.is(sequencer.position("c"), 3);
});

test("advance() moves the position forward, never back, and releases held items", (t) => {
  const { sequencer, emitted } = setup();
  sequencer.offer(m(6));
  sequencer.advance("c", 5);
  t.deepEqual(emitted, ["c:6"]);
  sequencer.advance("c", 2);
  t.is(sequencer.position("c"), 6);
  sequencer.offer(m(4));
  t.deepEqual(emitted, ["c:6"]);
});

test("forget() drops the position and the held items, and cancels the fill", async (t) => {
  const { sequencer, emitted, fills, fake } = setup();
  sequencer.offer(m(1));
  sequencer.offer(m(3));
  sequencer.forget("c");
  t.is(sequencer.position("c"), 0);
  await fake.tickAsync(WAIT_MS * 3);
  t.deepEqual(fills, []);
  sequencer.offer(m(1)); // a new follow starts from 0, and the forgotten 3 is not released
  t.deepEqual(emitted, ["c:1", "c:1"]);
});

test("a filler error calls onFillError and delivers nothing", async (t) => {
  const boom = new Error("db down");
  const { sequencer, emitted, errors, fake } = setup(async () => {
    throw boom;
  });
  sequencer.offer(m(2));
  await fake.tickAsync(WAIT_MS);
  t.deepEqual(errors, [boom]);
  t.deepEqual(emitted, []);
});

test("dispose() stops pending fills and ignores later offers", async (t) => {
  const { sequencer, emitted, fills, fake } = setup();
  sequencer.offer(m(1));
  sequencer.offer(m(3));
  sequencer.dispose();
  sequencer.offer(m(2));
  await fake.tickAsync(WAIT_MS * 3);
  t.deepEqual(fills, []);
  t.deepEqual(emitted, ["c:1"]);
});

test("dispose() during a fill discards its result", async (t) => {
  let finish!: (items: Sequenced[]) => void;
  const { sequencer, emitted, fills, fake } = setup(
    () =>
      new Promise((resolve) => {
        finish = resolve;
      }),
  );
  sequencer.offer(m(2));
  await fake.tickAsync(WAIT_MS);
  t.is(fills.length, 1);
  sequencer.dispose();
  finish([m(1)]);
  await fake.tickAsync(0);
  t.deepEqual(emitted, []);
});
