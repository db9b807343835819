// Read cursors moved by sends (design.md, "Read cursors"): after you reply,
// nothing before your reply counts as unread for you or is replayed to you as
// the offline queue; and a DM exists from its first stored message on, so a
// refused first send leaves no empty DM in anyone's inbox.
import anyTest, { type TestFn } from "ava";
import type { Conversation, Message, Target } from "../gen/parley/chat/v1/chat.js";
import { newUser, uniqueName, type TestUser } from "./helpers/clients.js";
import { freshDatabase } from "./helpers/infra.js";
import { RawStream } from "./helpers/raw-stream.js";
import { NO_RATE_LIMIT, startServer, type InProcessServer } from "./helpers/servers.js";

const test = anyTest as TestFn<{ server: InProcessServer }>;

test.before(async (t) => {
  t.context.server = await startServer({ DATABASE_URL: await freshDatabase(), REDIS_URL: undefined, ...NO_RATE_LIMIT });
});
test.after.always(async (t) => {
  await t.context.server?.shutdown();
});

let ids = 0;
const say = (user: TestUser, to: Target, body: string): Promise<Message> => user.api.send(to, body, `rc-${++ids}`);

async function inbox(user: TestUser, conversationId: string): Promise<Pick<Conversation, "lastSeq" | "lastReadSeq" | "unread"> | undefined> {
  const found = (await user.api.listConversations()).find((c) => c.id === conversationId);
  return found && { lastSeq: found.lastSeq, lastReadSeq: found.lastReadSeq, unread: found.unread };
}

/** What a reconnect without cursors replays (the offline queue) of one conversation: its seqs. */
async function offlineQueue(address: string, user: TestUser, conversationId: string): Promise<number[]> {
  const stream = RawStream.connect(address, user.token).hello();
  try {
    await stream.until(() => stream.caughtUp, `${user.username} caught up`, 10_000);
    return stream
      .replayed()
      .filter((m) => m.conversationId === conversationId)
      .map((m) => m.seq);
  } finally {
    stream.close();
  }
}

test("a DM reply marks everything before it read: unread 0, and a reconnect replays nothing before it", async (t) => {
  const { address } = t.context.server;
  const [ana, ben] = await Promise.all([newUser(address, "rc"), newUser(address, "rc")]);
  for (const body of ["one", "two", "three"]) await say(ben, { username: ana.username }, body);
  const reply = await say(ana, { username: ben.username }, "got them");
  t.is(reply.seq, 4);

  t.deepEqual(await inbox(ana, reply.conversationId), { lastSeq: 4, lastReadSeq: 4, unread: 0 });
  // Ben's own three are read by his sending them; ana's reply is new to him.
  t.deepEqual(await inbox(ben, reply.conversationId), { lastSeq: 4, lastReadSeq: 3, unread: 1 });
  t.deepEqual(await offlineQueue(address, ana, reply.conversationId), []);
  t.deepEqual(await offlineQueue(address, ben, reply.conversationId), [4]);
});

test("a group reply marks the group read for the replier only; the read cursor never moves back", async (t) => {
  const { address } = t.context.server;
  const [ana, ben, cid] = await Promise.all([newUser(address, "rc"), newUser(address, "rc"), newUser(address, "rc")]);
  const name = uniqueName("grp");
  const { conversationId } = await ben.api.createGroup(name);
  await Promise.all([ana.api.joinGroup(name), cid.api.joinGroup(name)]);
  await say(ben, { group: name }, "g1");
  await say(ben, { group: name }, "g2");
  // Ana had read only g1 when she replies.
  await ana.api.markRead(conversationId, 1);
  const reply = await say(ana, { group: name }, "g3 from ana");
  t.is(reply.seq, 3);

  t.deepEqual(await inbox(ana, conversationId), { lastSeq: 3, lastReadSeq: 3, unread: 0 });
  t.deepEqual(await inbox(ben, conversationId), { lastSeq: 3, lastReadSeq: 2, unread: 1 });
  t.deepEqual(await inbox(cid, conversationId), { lastSeq: 3, lastReadSeq: 0, unread: 3 });
  t.deepEqual(await offlineQueue(address, ana, conversationId), []);
  t.deepEqual(await offlineQueue(address, cid, conversationId), [1, 2, 3]);

  // Marking an older seq after the reply does not move the cursor back.
  t.is(await ana.api.markRead(conversationId, 1), 3);
});

test("a broadcast moves the sender's broadcast cursor to it", async (t) => {
  const { address } = t.context.server;
  const [ana, ben] = await Promise.all([newUser(address, "rc"), newUser(address, "rc")]);
  await say(ben, { broadcast: true }, "hello all");
  await say(ben, { broadcast: true }, "hello again");
  const mine = await say(ana, { broadcast: true }, "hi from ana");

  const seen = await inbox(ana, "broadcast");
  t.is(seen?.lastReadSeq, mine.seq);
  t.is(seen?.unread, (seen?.lastSeq ?? 0) - mine.seq, "only what others sent after her own counts");
  t.false((await offlineQueue(address, ana, "broadcast")).some((seq) => seq <= mine.seq));
});

test("sends committed together (a burst on Connect) move the cursor to the last of them", async (t) => {
  const { address } = t.context.server;
  const [ana, ben] = await Promise.all([newUser(address, "rc"), newUser(address, "rc")]);
  for (const body of ["a", "b"]) await say(ben, { username: ana.username }, body);
  const stream = RawStream.connect(address, ana.token).hello();
  t.teardown(() => stream.close());
  await stream.until(() => stream.caughtUp, "ana caught up");
  for (let i = 0; i < 30; i++) stream.send({ username: ben.username }, `burst ${i}`, `burst-${ids}-${i}`);
  await stream.until(() => stream.acks().length === 30, "30 acks");
  const last = Math.max(...stream.acks().map((m) => m.seq));
  t.is(last, 32);
  t.deepEqual(await inbox(ana, stream.acks()[0].conversationId), { lastSeq: 32, lastReadSeq: 32, unread: 0 });
});

test("a refused first DM leaves no conversation in either inbox; crossing first DMs make one", async (t) => {
  const { address } = t.context.server;
  const [ana, ben, cid] = await Promise.all([newUser(address, "rc"), newUser(address, "rc"), newUser(address, "rc")]);
  await t.throwsAsync(say(ana, { username: ben.username }, "a\u0000b"));
  await t.throwsAsync(say(ana, { username: ben.username }, ""));
  t.deepEqual(
    (await ben.api.listConversations()).filter((c) => c.id.startsWith("dm:")),
    [],
  );
  t.deepEqual(
    (await ana.api.listConversations()).filter((c) => c.id.startsWith("dm:")),
    [],
  );

  // The first stored message makes the DM, for both.
  const first = await say(ana, { username: ben.username }, "hello");
  t.is(first.seq, 1);
  t.deepEqual(await inbox(ben, first.conversationId), { lastSeq: 1, lastReadSeq: 0, unread: 1 });
  t.deepEqual(await inbox(ana, first.conversationId), { lastSeq: 1, lastReadSeq: 1, unread: 0 });

  // Two first DMs that cross each other: one conversation, seqs 1 and 2.
  const [a, c] = await Promise.all([say(ana, { username: cid.username }, "hi cid"), say(cid, { username: ana.username }, "hi ana")]);
  t.is(a.conversationId, c.conversationId);
  t.deepEqual([a.seq, c.seq].sort(), [1, 2]);
});
