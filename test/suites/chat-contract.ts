// The contract of ChatService's calls, as real clients see it over real gRPC:
// history paging, the inbox, read cursors, groups, presence, typing and live
// delivery to Connect and to Subscribe.
import { randomUUID } from "node:crypto";
import { status, type ServiceError } from "@grpc/grpc-js";
import type { ExecutionContext, SerialFn } from "ava";
import { ConversationKind, type Conversation, type Message, type ServerFrame, type Target } from "../../gen/parley/chat/v1/chat.js";
import { bearer } from "../../services/client/api.js";
import type { Backend, Deployment, TestServer } from "../helpers/backends.js";
import { connect, eventually, newUser, pollUntil, uniqueName, type Inbox, type TestUser } from "../helpers/clients.js";

const { CONVERSATION_KIND_DIRECT: DIRECT, CONVERSATION_KIND_GROUP: GROUP, CONVERSATION_KIND_BROADCAST: BROADCAST } = ConversationKind;

/** A Target as decoded, without the oneof's unset members. */
const target = (to: Target | undefined) => Object.fromEntries(Object.entries(to ?? {}).filter(([, v]) => v !== undefined));

const say = (user: TestUser, to: Target, body: string): Promise<Message> => user.api.send(to, body, randomUUID());

async function conversation(user: TestUser, id: string): Promise<Conversation | undefined> {
  return (await user.api.listConversations()).find((c) => c.id === id);
}

/** A Subscribe stream (the gRPC-web path) through the generated client; resolves once caught up. */
async function subscribe(user: TestUser) {
  const call = user.api.chat.subscribe({ cursors: [], acceptBatch: false }, bearer(user.token));
  const frames: ServerFrame[] = [];
  call.on("data", (frame: ServerFrame) => frames.push(frame));
  call.on("error", (err: ServiceError) => err.code !== status.CANCELLED && frames.push({ drain: { reason: err.message } }));
  await pollUntil(() => frames.some((f) => f.caughtUp), `${user.username} Subscribe caught up`);
  return { frames, messages: () => frames.flatMap((f) => (f.message ? [f.message] : [])), cancel: () => call.cancel() };
}

/** Everything stored in a conversation, paging back with `limit`. */
async function everything(user: TestUser, conversationId: string, limit: number): Promise<{ seqs: number[]; pages: number }> {
  const seqs: number[] = [];
  let pages = 0;
  for (let before = 0; ; ) {
    const page = await user.api.getHistory(conversationId, before, limit);
    pages += 1;
    seqs.unshift(...page.messages.map((m) => m.seq));
    if (!page.hasMore) return { seqs, pages };
    before = page.messages[0].seq;
  }
}

/** Registers the chat contract suite on `test`, against one server of a fresh deployment of `backend`. */
export function chatContractSuite(test: SerialFn, backend: Backend): void {
  let deployment: Deployment | undefined;
  let started: TestServer | undefined;
  const server = () => started as TestServer;

  test.before(async () => {
    deployment = await backend.deploy();
    // History paging needs a few hundred sends in a moment: lift the flood limit for this suite.
    started = await deployment.start({ RATE_LIMIT_PER_SECOND: "10000", RATE_LIMIT_BURST: "10000" });
  });
  test.after.always(async () => {
    await deployment?.close();
  });

  const users = (count: number): Promise<TestUser[]> => Promise.all(Array.from({ length: count }, () => newUser(server().address)));

  /** A Connect inbox that is closed when the test ends. */
  async function online(t: ExecutionContext, user: TestUser): Promise<Inbox> {
    const inbox = await connect(user, server().address);
    t.teardown(() => inbox.client.close());
    return inbox;
  }

  test(`${backend.name}: GetHistory: newest page first, 50 by default, 200 at most, ascending, with has_more and before_seq paging`, async (t) => {
    const [alice, bob] = await users(2);
    const sent: Message[] = [];
    // Every third message goes the other way: both sides write to the same conversation.
    for (let i = 1; i <= 205; i += 1) {
      sent.push(await (i % 3 === 0 ? say(bob, { username: alice.username }, `m${i}`) : say(alice, { username: bob.username }, `m${i}`)));
    }
    const id = sent[0].conversationId;
    t.deepEqual(
      sent.map((m) => m.seq),
      Array.from({ length: 205 }, (_, i) => i + 1),
    );
    const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

    const newest = await alice.api.getHistory(id);
    t.deepEqual(
      newest.messages.map((m) => m.seq),
      range(156, 205),
    );
    t.deepEqual(
      newest.messages.map((m) => m.body),
      range(156, 205).map((i) => `m${i}`),
    );
    t.true(newest.hasMore);
    t.deepEqual(newest.messages[49], { ...sent[204] });

    const capped = await bob.api.getHistory(id, 0, 1000);
    t.deepEqual(
      capped.messages.map((m) => m.seq),
      range(6, 205),
    );
    t.true(capped.hasMore);
    t.deepEqual(await bob.api.getHistory(id, 0, 200), capped);

    const oldest = await alice.api.getHistory(id, 6, 0);
    t.deepEqual(
      oldest.messages.map((m) => m.seq),
      range(1, 5),
    );
    t.false(oldest.hasMore);
    const middle = await alice.api.getHistory(id, 100, 10);
    t.deepEqual(
      middle.messages.map((m) => m.seq),
      range(90, 99),
    );
    t.true(middle.hasMore);
    t.deepEqual(
      middle.messages.map((m) => m.sender),
      range(90, 99).map((i) => (i % 3 === 0 ? bob.username : alice.username)),
    );

    t.deepEqual(await everything(bob, id, 30), { seqs: range(1, 205), pages: 7 });
    const beyond = await alice.api.getHistory(id, 206, 200);
    t.deepEqual([beyond.messages.length, beyond.messages[0]?.seq, beyond.hasMore], [200, 6, true]);
  });

  test(`${backend.name}: ListConversations: titles, kinds, last_seq, last_read_seq, and unread counting only others' messages`, async (t) => {
    const [alice, bob] = await users(2);
    const name = uniqueName("Room");
    await say(alice, { username: bob.username }, "a1");
    const a2 = await say(alice, { username: bob.username.toUpperCase() }, "a2");
    t.deepEqual(target(a2.to), { username: bob.username }, "a DM shows the name as spelled at sign-up");
    const dm = (await say(bob, { username: alice.username }, "b1")).conversationId;
    const group = await alice.api.createGroup(name);
    await bob.api.joinGroup(name.toLowerCase());
    await say(bob, { group: name }, "g1");
    await say(bob, { group: name.toUpperCase() }, "g2");
    await say(alice, { group: name }, "g3");

    const aliceInbox = await alice.api.listConversations();
    t.deepEqual(aliceInbox.map((c) => c.id).sort(), [dm, group.conversationId, "broadcast"].sort());
    const [aliceDm, aliceGroup] = [aliceInbox.find((c) => c.id === dm), aliceInbox.find((c) => c.kind === GROUP)];
    // A send moves the sender's read cursor to it (design.md, "Read cursors").
    t.deepEqual(aliceDm, { id: dm, kind: DIRECT, title: bob.username, lastSeq: 3, lastReadSeq: 2, unread: 1 });
    t.deepEqual(aliceGroup, { id: group.conversationId, kind: GROUP, title: name, lastSeq: 3, lastReadSeq: 3, unread: 0 });
    const broadcast = aliceInbox.find((c) => c.id === "broadcast");
    t.like(broadcast, { kind: BROADCAST, title: "broadcast" });

    const bobInbox = await bob.api.listConversations();
    t.like(
      bobInbox.find((c) => c.id === dm),
      { kind: DIRECT, title: alice.username, lastSeq: 3, lastReadSeq: 3, unread: 0 },
    );
    t.like(
      bobInbox.find((c) => c.id === group.conversationId),
      { title: name, lastSeq: 3, lastReadSeq: 2, unread: 1 },
    );

    t.is(await alice.api.markRead(dm, 3), 3);
    t.like(await conversation(alice, dm), { lastReadSeq: 3, unread: 0 });
    t.like(await conversation(bob, group.conversationId), { lastReadSeq: 2, unread: 1 }, "one user's read cursor moved another's");
  });

  test(`${backend.name}: MarkRead never moves backwards and is capped at last_seq; the read frame on Connect moves it too`, async (t) => {
    const [alice, bob] = await users(2);
    const dm = (await say(bob, { username: alice.username }, "1")).conversationId;
    for (const body of ["2", "3"]) await say(bob, { username: alice.username }, body);
    t.is(await alice.api.markRead(dm, 2), 2);
    t.is(await alice.api.markRead(dm, 1), 2);
    t.is(await alice.api.markRead(dm, 0), 2);
    t.is(await alice.api.markRead(dm, 99), 3);
    t.like(await conversation(alice, dm), { lastSeq: 3, lastReadSeq: 3, unread: 0 });
    await say(bob, { username: alice.username }, "4");
    await say(bob, { username: alice.username }, "5");
    t.like(await conversation(alice, dm), { lastSeq: 5, lastReadSeq: 3, unread: 2 });

    // Without a cursor, the stream replays what is unread: 4 and 5, not 1 to 3.
    const inbox = await online(t, alice);
    t.deepEqual(inbox.bodies(dm), ["4", "5"]);
    inbox.client.markRead(dm, 4);
    await eventually(
      () => conversation(alice, dm),
      (c) => c?.lastReadSeq === 4,
    );
    inbox.client.markRead(dm, 1);
    const pong = new Promise((resolve) => inbox.client.once("pong", resolve));
    inbox.client.ping();
    await pong;
    t.like(await conversation(alice, dm), { lastReadSeq: 4, unread: 1 });
  });

  test(`${backend.name}: groups: the creator is a member, counts are right, join is idempotent, names ignore case but keep their spelling`, async (t) => {
    const [owner, bob, carol] = await users(3);
    const name = `Crew.${uniqueName("X")}`;
    const created = await owner.api.createGroup(name);
    t.like(created, { name, memberCount: 1, isMember: true, conversationId: `group:${name.toLowerCase()}` });
    t.true((created.createdAt?.getTime() ?? 0) > Date.now() - 60_000);
    t.like(await conversation(owner, created.conversationId), { kind: GROUP, title: name });

    t.like(await bob.api.joinGroup(name.toUpperCase()), { name, memberCount: 2, isMember: true });
    await say(owner, { group: name }, "one");
    await say(owner, { group: name }, "two");
    t.like(await conversation(bob, created.conversationId), { unread: 2 });
    t.like(await bob.api.joinGroup(name.toLowerCase()), { name, memberCount: 2, isMember: true });
    t.like(await conversation(bob, created.conversationId), { lastReadSeq: 0, unread: 2 }, "joining again marked the group read");

    const sent = await say(bob, { group: name.toLowerCase() }, "three");
    t.deepEqual(target(sent.to), { group: name });
    t.is(sent.conversationId, created.conversationId);

    // A late joiner can read the history, but it is not unread for them.
    t.like(await carol.api.joinGroup(name), { memberCount: 3 });
    t.like(await conversation(carol, created.conversationId), { lastSeq: 3, lastReadSeq: 3, unread: 0 });
    t.deepEqual(
      (await carol.api.getHistory(created.conversationId)).messages.map((m) => m.body),
      ["one", "two", "three"],
    );

    t.like(await bob.api.leaveGroup(name.toUpperCase()), { name, memberCount: 2, isMember: false });
    t.is(await conversation(bob, created.conversationId), undefined);
    const err = await t.throwsAsync(say(bob, { group: name }, "gone"));
    t.is((err as ServiceError | undefined)?.code, status.PERMISSION_DENIED);
    t.like((await owner.api.listGroups(name))[0], { name, memberCount: 2, isMember: true });
  });

  test(`${backend.name}: ListGroups: query matches part of the name ignoring case, % and _ are literal, mine lists only mine`, async (t) => {
    const [alice, bob, carol, dave] = await users(4);
    const tag = uniqueName("q").slice(1, 9);
    const [under, plain, other] = [`Lg${tag}_one`, `lg${tag}Xone`, `LG${tag}two`];
    await alice.api.createGroup(under);
    await alice.api.createGroup(plain);
    await bob.api.createGroup(other);
    await carol.api.joinGroup(other.toLowerCase());
    const names = async (user: TestUser, query: string, mine = false) => (await user.api.listGroups(query, mine)).map((g) => g.name).sort();

    t.deepEqual(await names(alice, tag.toUpperCase()), [under, plain, other].sort());
    t.deepEqual(await names(alice, `g${tag}T`), [other]);
    t.deepEqual(await names(alice, `${tag}_`), [under]);
    t.deepEqual(await names(alice, `${tag}%`), []);
    t.deepEqual(await names(alice, `${tag}\\`), []);
    t.deepEqual(await names(alice, `${tag}_one`.toUpperCase()), [under]);
    t.deepEqual(await names(alice, "", true), [under, plain].sort());
    t.deepEqual(await names(carol, "", true), [other]);
    t.deepEqual(await names(carol, `${tag}_`, true), []);
    t.deepEqual(await names(dave, "", true), []);
    const listed = await alice.api.listGroups(tag);
    t.deepEqual(
      listed.map((g) => [g.name, g.isMember, g.memberCount]).sort(),
      [
        [under, true, 1],
        [plain, true, 1],
        [other, false, 2],
      ].sort(),
    );
  });

  test(`${backend.name}: ListOnlineUsers: a connected user shows up, and disappears after its stream closes`, async (t) => {
    const [alice, bob, observer] = await users(3);
    const listed = () => observer.api.listOnlineUsers();
    t.false((await listed()).includes(alice.username));
    const inbox = await connect(alice, server().address);
    const sub = await subscribe(bob);
    t.true((await listed()).includes(alice.username));
    t.true((await listed()).includes(bob.username));
    inbox.client.close();
    sub.cancel();
    await eventually(listed, (names) => !names.includes(alice.username) && !names.includes(bob.username));
    t.pass();
  });

  test(`${backend.name}: presence goes to DM peers and group members, not to users who share only the broadcast`, async (t) => {
    const [alice, dmPeer, groupPeer, stranger, herald] = await users(5);
    await say(alice, { username: dmPeer.username }, "hi");
    const group = await alice.api.createGroup(uniqueName("Pres"));
    await groupPeer.api.joinGroup(group.name);
    const [dmInbox, groupInbox, strangerInbox] = await Promise.all([online(t, dmPeer), online(t, groupPeer), online(t, stranger)]);
    const about = (inbox: Inbox) => inbox.presence.filter((p) => p.username === alice.username).map((p) => p.online);
    /** A DM to the stranger, sent after the event: once it arrives, any presence for them would have too. */
    const barrier = async () => {
      const body = randomUUID();
      await say(herald, { username: stranger.username }, body);
      await strangerInbox.until(() => strangerInbox.bodies().includes(body), "the barrier DM");
    };

    const aliceInbox = await connect(alice, server().address);
    await dmInbox.until(() => about(dmInbox).length === 1, "online at the DM peer");
    await groupInbox.until(() => about(groupInbox).length === 1, "online at the group member");
    await barrier();
    aliceInbox.client.close();
    await dmInbox.until(() => about(dmInbox).length === 2, "offline at the DM peer");
    await groupInbox.until(() => about(groupInbox).length === 2, "offline at the group member");
    await barrier();

    t.deepEqual(about(dmInbox), [true, false]);
    t.deepEqual(about(groupInbox), [true, false]);
    t.deepEqual(about(strangerInbox), []);
  });

  test(`${backend.name}: typing reaches the DM peer and the group members, not the typer, and is never stored`, async (t) => {
    const [alice, bob, carol] = await users(3);
    const dm = (await say(alice, { username: bob.username }, "before typing")).conversationId;
    const group = await alice.api.createGroup(uniqueName("Typ"));
    await bob.api.joinGroup(group.name);
    await carol.api.joinGroup(group.name);
    const [aliceInbox, bobInbox, carolInbox] = await Promise.all([online(t, alice), online(t, bob), online(t, carol)]);

    aliceInbox.client.typing({ username: bob.username });
    aliceInbox.client.typing({ group: group.name.toLowerCase() });
    await bobInbox.until(() => bobInbox.typing.length === 2, "bob sees both typing events");
    await carolInbox.until(() => carolInbox.typing.length === 1, "carol sees the group typing event");
    // Sent after the typing frames on the same stream and channel: once it is back, the typing would have been too.
    await aliceInbox.client.send({ group: group.name }, "after typing");
    await aliceInbox.until(() => aliceInbox.bodies().includes("after typing"), "alice's own group message");

    const typing = (inbox: Inbox) => inbox.typing.map((e) => ({ from: e.from, to: target(e.to) }));
    t.deepEqual(typing(bobInbox), [
      { from: alice.username, to: { username: bob.username } },
      { from: alice.username, to: { group: group.name } },
    ]);
    t.deepEqual(typing(carolInbox), [{ from: alice.username, to: { group: group.name } }]);
    t.deepEqual(aliceInbox.typing, []);
    t.deepEqual(
      (await bob.api.getHistory(dm)).messages.map((m) => m.body),
      ["before typing"],
    );
    t.deepEqual(
      (await bob.api.getHistory(group.conversationId)).messages.map((m) => m.body),
      ["after typing"],
    );
    t.like(await conversation(bob, dm), { lastSeq: 1 });
  });

  test(`${backend.name}: SendTyping, the unary form, reaches a Subscribe stream of the DM peer and the group's members, not the typer`, async (t) => {
    const [alice, bob, carol] = await users(3);
    await say(alice, { username: bob.username }, "hello");
    const group = await alice.api.createGroup(uniqueName("Uty"));
    await carol.api.joinGroup(group.name);
    const [bobSub, carolSub, aliceSub] = await Promise.all([subscribe(bob), subscribe(carol), subscribe(alice)]);
    t.teardown(() => {
      for (const sub of [bobSub, carolSub, aliceSub]) sub.cancel();
    });
    await alice.api.sendTyping({ username: bob.username });
    await alice.api.sendTyping({ group: group.name });
    const typing = (sub: typeof bobSub) => sub.frames.flatMap((f) => (f.typing ? [{ from: f.typing.from, to: target(f.typing.to) }] : []));
    await pollUntil(() => typing(bobSub).length === 1 && typing(carolSub).length === 1, "typing at bob and carol");
    t.deepEqual(typing(bobSub), [{ from: alice.username, to: { username: bob.username } }]);
    t.deepEqual(typing(carolSub), [{ from: alice.username, to: { group: group.name } }]);
    // Broadcast typing is accepted and dropped; an unknown user is NOT_FOUND.
    await alice.api.sendTyping({ broadcast: true });
    const refused = await alice.api.sendTyping({ username: uniqueName("ghost") }).catch((err: ServiceError) => err);
    t.is((refused as ServiceError).code, status.NOT_FOUND);
    t.deepEqual(typing(aliceSub), []);
  });

  test(`${backend.name}: DMs, groups and broadcast are delivered live to Connect and to Subscribe`, async (t) => {
    const [sender, receiver] = await users(2);
    const group = await sender.api.createGroup(uniqueName("Live"));
    await receiver.api.joinGroup(group.name);
    const inbox = await online(t, receiver);
    const sub = await subscribe(receiver);
    t.teardown(() => sub.cancel());
    const senderInbox = await online(t, sender);

    const sent = [
      await say(sender, { username: receiver.username }, `dm ${randomUUID()}`),
      await say(sender, { group: group.name }, `group ${randomUUID()}`),
      await say(sender, { broadcast: true }, `broadcast ${randomUUID()}`),
      await senderInbox.client.send({ username: receiver.username }, `dm over Connect ${randomUUID()}`),
    ];
    const ids = new Set(sent.map((m) => m.id));
    const strip = (messages: Message[]) =>
      messages
        .filter((m) => ids.has(m.id))
        .map((m) => ({ id: m.id, conversation: m.conversationId, seq: m.seq, from: m.sender, to: target(m.to), body: m.body }));
    const expected = strip(sent);

    await inbox.until(() => strip(inbox.messages).length === 4, "all four on Connect");
    await pollUntil(() => strip(sub.messages()).length === 4, "all four on Subscribe");
    t.deepEqual(strip(inbox.messages), expected);
    t.deepEqual(strip(sub.messages()), expected);
    const dm = { username: receiver.username };
    t.deepEqual(
      expected.map((m) => m.to),
      [dm, { group: group.name }, { broadcast: true }, dm],
    );
    t.false(
      sub.frames.some((f) => f.drain),
      "the Subscribe stream failed",
    );
    // The sender's own stream gets the DM and group messages too (its other devices stay in sync).
    await senderInbox.until(() => strip(senderInbox.messages).length === 4, "the sender's own copies");
  });

  test(`${backend.name}: a group created, joined or left while connected starts or stops its live delivery at once`, async (t) => {
    const [alice, bob] = await users(2);
    const [aliceInbox, bobInbox] = await Promise.all([online(t, alice), online(t, bob)]);
    const group = await alice.api.createGroup(uniqueName("Mid"));
    await bob.api.joinGroup(group.name);
    await say(bob, { group: group.name }, "joined");
    await say(alice, { group: group.name }, "welcome");
    await aliceInbox.until(() => aliceInbox.bodies(group.conversationId).length === 2, "alice gets both group messages");
    await bobInbox.until(() => bobInbox.bodies(group.conversationId).length === 2, "bob gets both group messages");

    await bob.api.leaveGroup(group.name);
    await say(alice, { group: group.name }, "after bob left");
    await say(alice, { username: bob.username }, "barrier");
    await bobInbox.until(() => bobInbox.bodies().includes("barrier"), "the DM sent after the group message");
    await aliceInbox.until(() => aliceInbox.bodies(group.conversationId).length === 3, "alice gets her own message");
    t.deepEqual(aliceInbox.bodies(group.conversationId), ["joined", "welcome", "after bob left"]);
    t.deepEqual(bobInbox.bodies(group.conversationId), ["joined", "welcome"]);
  });
}
