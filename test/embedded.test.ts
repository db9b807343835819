// The embedded mode (design.md, "Runtime modes"): no DATABASE_URL and no
// REDIS_URL, so one process keeps its messages in PGlite under
// PARLEY_DATA_DIR and its bus and presence in memory. History survives a
// restart.
import anyTest, { type TestFn } from "ava";
import type { Conversation, Message, Target } from "../gen/parley/chat/v1/chat.js";
import { ParleyApi } from "../services/client/api.js";
import { connect, newUser, PASSWORD, uniqueName, type TestUser } from "./helpers/clients.js";
import { fullHistory } from "./helpers/history.js";
import { scratchDir } from "./helpers/infra.js";
import { spawnServer, type ChildServer, type Env } from "./helpers/servers.js";

const test = anyTest as TestFn<{ cleanups: (() => unknown)[] }>;

test.before((t) => {
  t.context.cleanups = [];
});
test.after.always(async (t) => {
  for (const cleanup of t.context.cleanups.reverse()) await cleanup();
});

const BROADCAST: Target = { broadcast: true };
const WAIT_MS = 30_000;

const inbox = (conversations: Conversation[]) =>
  Object.fromEntries(conversations.map((c) => [c.id, { title: c.title, lastSeq: c.lastSeq, lastReadSeq: c.lastReadSeq, unread: c.unread }]));
const brief = (m: Message) => ({ id: m.id, seq: m.seq, sender: m.sender, body: m.body, sentAt: m.sentAt?.toISOString() });

test("embedded mode: DM, group and broadcast persist in PGlite across a restart, and seqs continue", async (t) => {
  const env: Env = { DATABASE_URL: undefined, REDIS_URL: undefined, PARLEY_DATA_DIR: scratchDir("pglite") };
  const servers: ChildServer[] = [];
  t.context.cleanups.push(async () => {
    for (const server of servers) {
      server.kill("SIGKILL");
      await server.exited;
    }
  });
  const start = async () => {
    const server = await spawnServer(env);
    servers.push(server);
    return server;
  };
  const stop = async (server: ChildServer) => {
    server.kill("SIGTERM");
    return server.exited;
  };

  const first = await start();
  const [alice, bob, carol] = await Promise.all(["al", "bo", "ca"].map((p) => newUser(first.address, p)));
  const group = await alice.api.createGroup(uniqueName("Embedded"));
  await bob.api.joinGroup(group.name.toLowerCase());
  await carol.api.joinGroup(group.name);

  // Bob is connected: the in-memory bus delivers live.
  const live = await connect(bob, first.address);
  t.context.cleanups.push(() => live.client.close());
  const sent: Message[] = [];
  for (let i = 1; i <= 3; i++) {
    sent.push(await alice.api.send({ username: bob.username }, `dm ${i}`, `dm-${i}`));
    sent.push(await alice.api.send({ group: group.name }, `group ${i}`, `g-${i}`));
  }
  sent.push(await alice.api.send(BROADCAST, "broadcast 1", "b-1"));
  sent.push(await carol.api.send(BROADCAST, "broadcast 2", "b-2"));
  sent.push(await alice.api.send(BROADCAST, "broadcast 3", "b-3"));
  await live.until(() => live.messages.length === sent.length, "bob got everything live", WAIT_MS);
  const dmId = sent[0].conversationId;
  const ids = [dmId, group.conversationId, "broadcast"];
  t.deepEqual(
    ids.map((id) => live.messages.filter((m) => m.conversationId === id).map((m) => m.seq)),
    [
      [1, 2, 3],
      [1, 2, 3],
      [1, 2, 3],
    ],
  );
  t.is(await bob.api.markRead(dmId, 1), 1);
  t.is(await bob.api.markRead("broadcast", 3), 3);
  live.client.close();

  const before = {
    alice: inbox(await alice.api.listConversations()),
    bob: inbox(await bob.api.listConversations()),
    carol: inbox(await carol.api.listConversations()),
  };
  t.deepEqual(before.bob, {
    [dmId]: { title: alice.username, lastSeq: 3, lastReadSeq: 1, unread: 2 },
    [group.conversationId]: { title: group.name, lastSeq: 3, lastReadSeq: 0, unread: 3 },
    broadcast: { title: "broadcast", lastSeq: 3, lastReadSeq: 3, unread: 0 },
  });
  t.deepEqual(before.carol[group.conversationId], { title: group.name, lastSeq: 3, lastReadSeq: 0, unread: 3 });
  // Carol's own broadcast (seq 2) moved her read cursor to it.
  t.deepEqual(before.carol.broadcast, { title: "broadcast", lastSeq: 3, lastReadSeq: 2, unread: 1 });
  const histories = await Promise.all(ids.map((id) => fullHistory(bob.api, id)));

  t.deepEqual(await stop(first), { code: 0, signal: null });
  const second = await start();

  // Everyone logs in again with the same password.
  const again = async (user: TestUser): Promise<TestUser> => {
    const api = new ParleyApi(second.address);
    t.context.cleanups.push(() => api.close());
    const grant = await api.logIn(user.username, PASSWORD);
    t.is(grant.user?.id, user.id);
    return { api, username: user.username, token: grant.token, id: user.id };
  };
  const [alice2, bob2, carol2] = [await again(alice), await again(bob), await again(carol)];

  t.deepEqual(inbox(await alice2.api.listConversations()), before.alice);
  t.deepEqual(inbox(await bob2.api.listConversations()), before.bob);
  t.deepEqual(inbox(await carol2.api.listConversations()), before.carol);
  t.deepEqual(
    await Promise.all(ids.map(async (id) => (await fullHistory(bob2.api, id)).map(brief))),
    histories.map((h) => h.map(brief)),
  );
  t.deepEqual(
    histories.map((h) => h.length),
    [3, 3, 3],
  );
  t.deepEqual(
    (await bob2.api.listGroups("", true)).map((g) => [g.name, g.memberCount]),
    [[group.name, 3]],
  );

  // New messages continue each conversation's seq, and a retried id from before the restart is still known.
  t.is((await alice2.api.send({ username: bob.username }, "dm 4", "dm-4")).seq, 4);
  t.is((await bob2.api.send({ group: group.name }, "group 4", "g-4")).seq, 4);
  t.is((await carol2.api.send(BROADCAST, "broadcast 4", "b-4")).seq, 4);
  t.deepEqual(brief(await alice2.api.send({ username: bob.username }, "dm 1", "dm-1")), brief(sent[0]));

  // Carol, who was never connected, gets her offline queue from the new process: all after her own broadcast 4.
  const carolLive = await connect(carol2, second.address);
  t.context.cleanups.push(() => carolLive.client.close());
  t.deepEqual(
    ids.map((id) => carolLive.messages.filter((m) => m.conversationId === id).map((m) => m.seq)),
    [[], [1, 2, 3, 4], []],
  );
  // Bob, who read the DM up to 1 and broadcast up to 3, and sent group 4, gets only what is after.
  const bobLive = await connect(bob2, second.address);
  t.context.cleanups.push(() => bobLive.client.close());
  t.deepEqual(
    ids.map((id) => bobLive.messages.filter((m) => m.conversationId === id).map((m) => m.seq)),
    [[2, 3, 4], [], [4]],
  );
  const unread = inbox(await bob2.api.listConversations());
  t.deepEqual(
    ids.map((id) => unread[id].unread),
    [3, 0, 1],
  );

  t.deepEqual(await stop(second), { code: 0, signal: null });
});
