import test from "ava";
import { RecentMessages } from "./recent-messages.js";

const frame = (seq: number) => Buffer.from(`m${seq}`);
const seqsOf = (found: { seq: number; frame: Buffer }[] | undefined) => found?.map((f) => `${f.seq}:${f.frame.toString()}`);

function recorded(conversationId: string, seqs: number[], recent = new RecentMessages()): RecentMessages {
  for (const seq of seqs) recent.record(conversationId, seq, frame(seq));
  return recent;
}

test("a range held whole is served in seq order, with each seq's own frame", (t) => {
  const recent = recorded("c", [5, 6, 7, 8]);
  t.deepEqual(seqsOf(recent.range("c", 5, 9)), ["6:m6", "7:m7", "8:m8"]);
  t.deepEqual(seqsOf(recent.range("c", 4, 6)), ["5:m5"]);
  // Nothing between the bounds: an empty page, whatever is held.
  t.deepEqual(recent.range("c", 8, 9), []);
  t.deepEqual(recent.range("other", 3, 4), []);
});

test("a range not held whole is not served: before the first seq held, past the last, or another conversation", (t) => {
  const recent = recorded("c", [5, 6, 7]);
  t.is(recent.range("c", 3, 7), undefined); // seq 4 was never seen
  t.is(recent.range("c", 5, 9), undefined); // seq 8 is not here yet
  t.is(recent.range("other", 0, 2), undefined);
});

test("a seq after a hole starts the tail again from it, and a repeat or an older seq changes nothing", (t) => {
  const recent = recorded("c", [1, 2, 3]);
  recent.record("c", 2, Buffer.from("not m2"));
  t.deepEqual(seqsOf(recent.range("c", 0, 4)), ["1:m1", "2:m2", "3:m3"]);
  // Seq 5 arrives before seq 4 (two pods' messages crossing on the bus): what is held stays without a hole.
  recorded("c", [5, 4, 6], recent);
  t.is(recent.range("c", 0, 7), undefined);
  t.is(recent.range("c", 3, 6), undefined);
  t.deepEqual(seqsOf(recent.range("c", 4, 7)), ["5:m5", "6:m6"]);
});

test("each conversation keeps its newest 128 messages", (t) => {
  const recent = recorded(
    "c",
    Array.from({ length: 300 }, (_, i) => i + 1),
  );
  t.is(recent.range("c", 171, 301), undefined); // seq 172 is gone
  const newest = recent.range("c", 172, 301);
  t.is(newest?.length, 128);
  t.deepEqual(seqsOf(newest?.slice(0, 1)), ["173:m173"]);
  t.deepEqual(seqsOf(newest?.slice(-1)), ["300:m300"]);
});

test("a held frame is a copy in memory of its own, not a slice that keeps a pooled slab alive", (t) => {
  const recent = new RecentMessages();
  const pooled = Buffer.from(new Uint8Array([1, 2, 3]));
  t.true(pooled.buffer.byteLength > pooled.length); // Node's pool, as frames built by frames.ts are
  recent.record("c", 1, pooled);
  const [held] = recent.range("c", 0, 2) ?? [];
  t.deepEqual([...held.frame], [1, 2, 3]);
  t.is(held.frame.buffer.byteLength, 3);
});

test("the least recently active conversations go first once the 16 MB budget is spent", (t) => {
  const recent = new RecentMessages();
  const big = Buffer.alloc(60 * 1024);
  // 3 conversations of 100 frames of 60 KB: 6 MB each, so the oldest one goes.
  for (const id of ["a", "b", "c"]) for (let seq = 1; seq <= 100; seq++) recent.record(id, seq, big);
  t.is(recent.range("a", 0, 101), undefined);
  t.is(recent.range("b", 0, 101)?.length, 100);
  t.is(recent.range("c", 0, 101)?.length, 100);
});
