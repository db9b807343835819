// The cluster under faults (design.md, guarantees 4–6): a pod drained with
// SIGTERM while messages flow, a pod killed with SIGKILL, and Redis restarted
// mid-traffic. Each test has a database, a Redis and two pods of its own, and
// the tests run one after another, so that at most two pods of this file run
// at once.
import { setTimeout as sleep } from "node:timers/promises";
import { status } from "@grpc/grpc-js";
import anyTest, { type ExecutionContext, type TestFn } from "ava";
import type { Message, Target } from "../gen/parley/chat/v1/chat.js";
import { ParleyApi } from "../services/client/api.js";
import type { ReconnectingClient } from "../services/client/reconnecting-client.js";
import { eventually, inboxFor, newUser, pollUntil, uniqueName, type Inbox, type TestUser } from "./helpers/clients.js";
import { assertIntact, fullHistory } from "./helpers/history.js";
import { cleanupsOf } from "./helpers/faults.js";
import { freshDatabase, freshRedis } from "./helpers/infra.js";
import { SendLoop } from "./helpers/send-loop.js";
import { NO_RATE_LIMIT, spawnServer, startedTogether, stopPod, type ChildServer } from "./helpers/servers.js";
import type { LocalRedis } from "../scripts/local-services.js";

const test = anyTest as TestFn<unknown>;
const WAIT_MS = 30_000;
const PRESENCE_TTL_SECONDS = 6;

// ---------------------------------------------------------------------------
// Helpers of this file

interface Cluster {
  pods: ChildServer[];
  redis: LocalRedis;
  /** Registers a cleanup: clients registered after the pods are closed before them. */
  cleanup: (cleanup: () => unknown) => void;
  track<T extends { close(): void }>(closeable: T): T;
}

/** A database, a Redis and `podNames.length` pods on them. */
async function startCluster(t: ExecutionContext, podNames: string[]): Promise<Cluster> {
  const cleanup = cleanupsOf(t);
  const redis = await freshRedis();
  const holder = { redis };
  cleanup(() => holder.redis.stop());
  const env = {
    DATABASE_URL: await freshDatabase(),
    REDIS_URL: redis.url,
    PRESENCE_TTL_SECONDS: String(PRESENCE_TTL_SECONDS),
    ...NO_RATE_LIMIT,
  };
  const pods = await startedTogether(
    podNames.map((POD_NAME) => spawnServer({ ...env, POD_NAME })),
    (pod) => stopPod(pod),
  );
  for (const pod of pods) cleanup(() => stopPod(pod));
  return {
    pods,
    get redis() {
      return holder.redis;
    },
    set redis(value: LocalRedis) {
      holder.redis = value;
    },
    cleanup,
    track(closeable) {
      cleanup(() => closeable.close());
      return closeable;
    },
  };
}

interface Timed<T> {
  at: number;
  value: T;
}

/** A reconnecting client over several pods, with its inbox and a timed log of its stream's life. */
interface Watched {
  user: TestUser;
  client: ReconnectingClient;
  inbox: Inbox;
  /** The pod of each stream, as `ready` named it. */
  readies: Timed<string>[];
  /** Each caught_up, with the pod of the stream it came on. */
  caughtUps: Timed<string>[];
  drains: Timed<string>[];
  disconnects: Timed<{ code: number; details: string }>[];
}

async function watch(cluster: Cluster, user: TestUser, addresses: string[]): Promise<Watched> {
  const inbox = inboxFor(user, addresses);
  const client = cluster.track(inbox.client);
  const w: Watched = { user, client, inbox, readies: [], caughtUps: [], drains: [], disconnects: [] };
  let pod = "";
  client.on("ready", (ready) => {
    pod = ready.pod;
    w.readies.push({ at: Date.now(), value: ready.pod });
  });
  client.on("caughtUp", () => w.caughtUps.push({ at: Date.now(), value: pod }));
  client.on("drain", (reason) => w.drains.push({ at: Date.now(), value: reason }));
  client.on("disconnected", ({ code, details }) => w.disconnects.push({ at: Date.now(), value: { code, details } }));
  client.start();
  await inbox.until(() => inbox.caughtUp > 0, `${user.username} caught up`, WAIT_MS);
  return w;
}

/**
 * What every test ends with: the stored history has no gap and holds each
 * acknowledged send exactly once, and every receiver got the whole of it,
 * once each, in order.
 */
async function checkEverythingArrived(
  t: ExecutionContext,
  api: ParleyApi,
  conversationId: string,
  loops: SendLoop[],
  receivers: Watched[],
): Promise<Message[]> {
  const history = await fullHistory(api, conversationId);
  const stored = assertIntact(t, history);
  const acked = loops.flatMap((loop) => loop.acked.map((a) => a.message));
  const lost = acked.filter((m) => {
    const s = stored.get(m.id);
    return s === undefined || s.seq !== m.seq || s.body !== m.body || s.clientMsgId !== m.clientMsgId;
  });
  t.deepEqual(lost.map(brief), [], "acknowledged sends missing from history");
  // Each loop sends one at a time, so its messages are stored in the order it sent them.
  for (const loop of loops) {
    const mine = history.filter((m) => m.clientMsgId.startsWith(`${loop.name}-`)).map((m) => m.body);
    t.deepEqual(
      mine,
      loop.acked.map((a) => a.message.body),
      `${loop.name}'s sends, once each, in order`,
    );
  }
  const last = history.length;
  for (const r of receivers) {
    const got = () => r.inbox.messages.filter((m) => m.conversationId === conversationId);
    await r.inbox.until(() => got().some((m) => m.seq === last), `${r.user.username} has everything`, WAIT_MS);
    t.deepEqual(got().map(brief), history.map(brief), `${r.user.username} got every message once, in order`);
  }
  return history;
}

const brief = (m: Message) => ({ id: m.id, seq: m.seq, sender: m.sender, body: m.body });
const firstAfter = <T>(events: Timed<T>[], time: number, match: (value: T) => boolean = () => true) =>
  events.find((e) => e.at >= time && match(e.value));

/** Users in one group, created through `pod`; the first creates it. */
async function groupOf(pod: ChildServer, prefixes: string[]): Promise<{ users: TestUser[]; to: Target; conversationId: string }> {
  const users = await Promise.all(prefixes.map((p) => newUser(pod.address, p)));
  const group = await users[0].api.createGroup(uniqueName("grp"));
  await Promise.all(users.slice(1).map((u) => u.api.joinGroup(group.name)));
  return { users, to: { group: group.name }, conversationId: group.conversationId };
}

// ---------------------------------------------------------------------------
// 4. SIGTERM while messages flow

test.serial("SIGTERM: clients on the drained pod get drain, resume on the other pod and miss nothing; the pod exits 0", async (t) => {
  const cluster = await startCluster(t, ["pod-a", "pod-b"]);
  const [a, b] = cluster.pods;
  const { users, to, conversationId } = await groupOf(b, ["sam", "rita", "ravi", "rosa"]);
  const [sam, rita, ravi, rosa] = users;
  for (const user of users) cluster.track(user.api);

  // Rita and Ravi are on pod A (the drained one first in their list); Rosa is on pod B.
  const drained = await Promise.all([rita, ravi].map((u) => watch(cluster, u, [a.address, b.address])));
  const rosaW = await watch(cluster, rosa, [b.address, a.address]);
  for (const w of drained)
    t.deepEqual(
      w.readies.map((r) => r.value),
      [a.pod],
    );

  // Sam sends unary through pod B; Rita and Ravi keep sending on their streams throughout.
  const loops = [
    new SendLoop("sam", (body, id) => sam.api.send(to, body, id)),
    ...drained.map((w) => new SendLoop(w.user.username, (body, id) => w.client.send(to, body, id))),
  ];
  await pollUntil(() => loops.every((l) => l.acked.length >= 10), "traffic before the drain", WAIT_MS);

  const signalledAt = Date.now();
  a.kill("SIGTERM");

  await pollUntil(
    () => drained.every((w) => firstAfter(w.caughtUps, signalledAt, (pod) => pod === b.pod) !== undefined),
    "every client of the drained pod caught up on the other pod",
    WAIT_MS,
  );
  const resumedAt = Math.max(...drained.map((w) => (firstAfter(w.caughtUps, signalledAt, (pod) => pod === b.pod) as Timed<string>).at));
  // And their sends go on from there.
  await pollUntil(() => loops.every((l) => l.ackedSince(resumedAt) >= 5), "sends after the resume", WAIT_MS);
  for (const loop of loops) await loop.stop();

  const exit = await a.exited;
  const exitedMs = Date.now() - signalledAt;
  t.deepEqual(exit, { code: 0, signal: null }, a.logs.slice(-20).join("\n"));

  for (const w of drained) {
    t.true(w.drains.length >= 1, `${w.user.username} got drain`);
    t.true(w.drains[0].at < (firstAfter(w.caughtUps, signalledAt) as Timed<string>).at, "drain came before the resume");
  }
  t.deepEqual(rosaW.disconnects, [], "rosa's stream on pod B was not disturbed");
  for (const loop of loops) t.deepEqual(loop.refused, [], `${loop.name}: no send refused`);

  const history = await checkEverythingArrived(t, sam.api, conversationId, loops, [...drained, rosaW]);
  t.log(
    `SIGTERM → every client caught up on ${b.pod}: ${resumedAt - signalledAt} ms ` +
      `(per client: ${drained.map((w) => `${(firstAfter(w.caughtUps, signalledAt) as Timed<string>).at - signalledAt} ms`).join(", ")}); ` +
      `pod exited 0 after ${exitedMs} ms; ${history.length} messages`,
  );
});

// ---------------------------------------------------------------------------
// 5. SIGKILL

test.serial("SIGKILL: the dead pod's users leave ListOnlineUsers within 30 s and peers on a live pod hear they went offline", async (t) => {
  const cluster = await startCluster(t, ["pod-a", "pod-b"]);
  const [a, b] = cluster.pods;
  const { users, to } = await groupOf(b, ["peer", "vic", "vim"]);
  const [peer, victim1, victim2] = users;
  for (const user of users) cluster.track(user.api);
  await victim2.api.send({ username: peer.username }, "a DM makes us peers too", "dm");

  const peerW = await watch(cluster, peer, [b.address]);
  // The victims' clients know only pod A: nothing brings them back online elsewhere.
  const victims = await Promise.all([victim1, victim2].map((u) => watch(cluster, u, [a.address])));
  const saw = (username: string, online: boolean) => () => peerW.inbox.presence.some((p) => p.username === username && p.online === online);
  for (const v of [victim1, victim2]) await peerW.inbox.until(saw(v.username, true), `${v.username} online`, WAIT_MS);
  const onB = cluster.track(new ParleyApi(b.address, peer.token));
  await eventually(
    () => onB.listOnlineUsers(),
    (names) => users.every((u) => names.includes(u.username)),
    WAIT_MS,
  );
  await victims[0].client.send(to, "before the crash");

  const killedAt = Date.now();
  a.kill("SIGKILL");
  t.is((await a.exited).signal, "SIGKILL");

  const online = await eventually(
    () => onB.listOnlineUsers(),
    (names) => !names.includes(victim1.username) && !names.includes(victim2.username),
    30_000 - (Date.now() - killedAt),
  );
  const listedOfflineMs = Date.now() - killedAt;
  t.true(online.includes(peer.username), "the peer on the live pod is still online");
  for (const v of [victim1, victim2]) await peerW.inbox.until(saw(v.username, false), `${v.username} offline event`, WAIT_MS);
  const eventMs = Date.now() - killedAt;
  t.deepEqual(peerW.disconnects, []);
  t.log(
    `SIGKILL → dropped from ListOnlineUsers on ${b.pod} in ${listedOfflineMs} ms, offline events by ${eventMs} ms ` +
      `(PRESENCE_TTL_SECONDS=${PRESENCE_TTL_SECONDS})`,
  );
});

// ---------------------------------------------------------------------------
// 6. Redis restarted mid-traffic

test.serial(
  "Redis restart: sends are acknowledged while it is down, streams end UNAVAILABLE and resume, nothing is lost, presence recovers",
  async (t) => {
    const cluster = await startCluster(t, ["pod-a", "pod-b"]);
    const [a, b] = cluster.pods;
    const { users, to, conversationId } = await groupOf(a, ["sam", "sue", "rita", "rosa"]);
    const [sam, sue, rita, rosa] = users;
    for (const user of users) cluster.track(user.api);
    const samOnA = cluster.track(new ParleyApi(a.address, sam.token));
    const sueOnB = cluster.track(new ParleyApi(b.address, sue.token));

    const receivers = [await watch(cluster, rita, [a.address, b.address]), await watch(cluster, rosa, [b.address, a.address])];
    // Unary senders through each pod, and the receivers send on their streams too.
    const loops = [
      new SendLoop("sam", (body, id) => samOnA.send(to, body, id)),
      new SendLoop("sue", (body, id) => sueOnB.send(to, body, id)),
      ...receivers.map((w) => new SendLoop(w.user.username, (body, id) => w.client.send(to, body, id))),
    ];
    const [samLoop, sueLoop] = loops;
    await pollUntil(() => loops.every((l) => l.acked.length >= 5), "traffic before the outage", WAIT_MS);

    const port = cluster.redis.port;
    const stoppedAt = Date.now();
    await cluster.redis.stop();

    // Down for a while: presence heartbeats fail and the clients' reconnects are refused a few times.
    await sleep(3000);
    // While Redis is down, unary sends through both pods are still acknowledged (they are durable in Postgres).
    await pollUntil(() => samLoop.ackedSince(stoppedAt) >= 10 && sueLoop.ackedSince(stoppedAt) >= 10, "unary acks while Redis is down", WAIT_MS);
    // Streams, which may have missed live events, ended.
    await pollUntil(() => receivers.every((w) => firstAfter(w.disconnects, stoppedAt) !== undefined), "streams ended", WAIT_MS);
    const ackedWhileDown = samLoop.ackedSince(stoppedAt) + sueLoop.ackedSince(stoppedAt);

    cluster.redis = await freshRedis(port);
    const restartedAt = Date.now();

    await pollUntil(
      () => receivers.every((w) => firstAfter(w.caughtUps, restartedAt) !== undefined),
      "every client caught up again after the restart",
      WAIT_MS,
    );
    const resumedMs = Math.max(...receivers.map((w) => (firstAfter(w.caughtUps, restartedAt) as Timed<string>).at)) - restartedAt;

    // Presence recovers: the connected users are listed again, on both pods; the others are not.
    for (const pod of [a, b]) {
      const api = cluster.track(new ParleyApi(pod.address, sam.token));
      const online = await eventually(
        () => api.listOnlineUsers(),
        (names) => names.includes(rita.username) && names.includes(rosa.username),
        WAIT_MS,
      );
      t.false(online.includes(sam.username), `${pod.pod}: sam has no stream`);
    }
    const presenceMs = Date.now() - restartedAt;

    await pollUntil(() => loops.every((l) => l.ackedSince(restartedAt) >= 5), "sends after the restart", WAIT_MS);
    for (const loop of loops) await loop.stop();

    for (const loop of loops) t.deepEqual(loop.refused, [], `${loop.name}: no send refused`);
    for (const w of receivers) {
      const codes = w.disconnects.filter((d) => d.at >= stoppedAt).map((d) => d.value);
      t.true(codes.length >= 1);
      t.deepEqual(
        codes.filter((c) => c.code !== status.UNAVAILABLE),
        [],
        `${w.user.username}: streams end UNAVAILABLE while Redis is down`,
      );
    }
    const history = await checkEverythingArrived(t, samOnA, conversationId, loops, receivers);
    t.log(
      `Redis down for ${restartedAt - stoppedAt} ms with ${ackedWhileDown} unary sends acknowledged meanwhile; ` +
        `clients caught up ${resumedMs} ms after the restart; presence listed again by ${presenceMs} ms; ${history.length} messages`,
    );
  },
);
