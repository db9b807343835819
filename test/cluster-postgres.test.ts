// Postgres down and back (design.md, guarantee 1 and "UNAVAILABLE: a dependency
// is down"): two pods on a Postgres of this file's own, which the test stops and
// restarts on the same data folder and port while messages flow. Sends fail
// with UNAVAILABLE meanwhile, nothing half-written is acknowledged, and once
// Postgres is back every send works and every receiver has everything.
import { setTimeout as sleep } from "node:timers/promises";
import { status } from "@grpc/grpc-js";
import anyTest, { type TestFn } from "ava";
import type { Message, Target } from "../gen/parley/chat/v1/chat.js";
import { ParleyApi } from "../services/client/api.js";
import { startPostgres } from "../scripts/local-services.js";
import { connect, newUser, pollUntil, uniqueName, type Inbox } from "./helpers/clients.js";
import { assertIntact, fullHistory } from "./helpers/history.js";
import { freshRedis, scratchDir } from "./helpers/infra.js";
import { RawStream } from "./helpers/raw-stream.js";
import { SendLoop } from "./helpers/send-loop.js";
import { NO_RATE_LIMIT, spawnServer, startedTogether, stopPod, type ChildServer } from "./helpers/servers.js";

const test = anyTest as TestFn<unknown>;
const WAIT_MS = 30_000;

// ---------------------------------------------------------------------------
// Helpers of this file

const brief = (m: Message) => ({ id: m.id, seq: m.seq, sender: m.sender, body: m.body });

// ---------------------------------------------------------------------------

test("Postgres down: sends fail UNAVAILABLE and nothing half-written is acknowledged; after it restarts, sends work and nothing is lost", async (t) => {
  const cleanups: (() => unknown)[] = [];
  t.teardown(async () => {
    for (const cleanup of cleanups.reverse()) await Promise.resolve(cleanup()).catch(() => undefined);
  });
  const dir = scratchDir("pg-down");
  const postgres = await startPostgres(dir);
  cleanups.push(() => postgres.stop()); // reads the pid file, so it stops the restarted server too
  const redis = await freshRedis();
  cleanups.push(() => redis.stop());
  const env = { DATABASE_URL: postgres.url, REDIS_URL: redis.url, ...NO_RATE_LIMIT };
  const pods: ChildServer[] = await startedTogether(
    ["pod-a", "pod-b"].map((POD_NAME) => spawnServer({ ...env, POD_NAME })),
    (pod) => stopPod(pod),
  );
  for (const pod of pods) cleanups.push(() => stopPod(pod));
  const [a, b] = pods;
  const track = <T extends { close(): void }>(c: T): T => {
    cleanups.push(() => c.close());
    return c;
  };

  const [sam, rita, rosa] = await Promise.all(["sam", "rita", "rosa"].map((p) => newUser(a.address, p)));
  for (const user of [sam, rita, rosa]) track(user.api);
  const group = await sam.api.createGroup(uniqueName("pgdown"));
  await Promise.all([rita, rosa].map((u) => u.api.joinGroup(group.name)));
  const to: Target = { group: group.name };

  const ritaIn: Inbox = await connect(rita, [a.address, b.address]);
  const rosaIn: Inbox = await connect(rosa, [b.address, a.address]);
  track(ritaIn.client);
  track(rosaIn.client);
  const samOnB = track(new ParleyApi(b.address, sam.token));
  // A raw Connect stream, to see the send_failed the reconnecting client hides (it retries UNAVAILABLE).
  const raw = track(RawStream.connect(a.address, rosa.token).hello());
  await raw.until(() => raw.caughtUp, "raw stream caught up", WAIT_MS);

  const loops = [
    new SendLoop("sam", (body, id) => samOnB.send(to, body, id), { pauseAfterRefusalMs: 100 }),
    new SendLoop("rita", (body, id) => ritaIn.client.send(to, body, id), { pauseAfterRefusalMs: 100 }),
  ];
  const [samLoop] = loops;
  await pollUntil(() => loops.every((l) => l.acked.length >= 5), "traffic before the outage", WAIT_MS);

  await postgres.stop();
  const downAt = Date.now();

  // While it is down: unary sends are refused with UNAVAILABLE, and so is a send on a stream.
  await pollUntil(() => samLoop.refused.filter((r) => r.at >= downAt).length >= 3, "refused sends", WAIT_MS);
  raw.send(to, "while Postgres is down", "while-down");
  await raw.until(() => raw.frames.some((f) => f.sendFailed || f.sent), "an answer to the raw send", WAIT_MS);
  t.deepEqual(
    raw.frames.filter((f) => f.sendFailed || f.sent).map((f) => f.sendFailed?.code),
    [status.UNAVAILABLE],
    "the stream send is refused, not acknowledged",
  );
  const ritaPending = ritaIn.client.send(to, "queued while Postgres is down", "rita-while-down");
  await sleep(1000);
  t.is(samLoop.ackedSince(downAt), 0, "no unary send is acknowledged while Postgres is down");

  await postgres.start();
  const restartedAt = Date.now();
  await pollUntil(() => loops.every((l) => l.ackedSince(restartedAt) >= 5), "sends after the restart", WAIT_MS);
  for (const loop of loops) await loop.stop();
  const queued = await ritaPending;
  t.is(queued.body, "queued while Postgres is down");

  // Every refusal was UNAVAILABLE; sent again with the same id, each is stored once.
  const refused = loops.flatMap((l) => l.refused);
  t.deepEqual(
    refused.filter((r) => r.code !== status.UNAVAILABLE),
    [],
  );
  const retried = await Promise.all(refused.map((r) => samOnB.send(to, r.body, r.clientMsgId)));
  const final = await samOnB.send(to, "from sam after all", "sam-final");

  const history = await fullHistory(sam.api, group.conversationId);
  const stored = assertIntact(t, history);
  const acked = [...loops.flatMap((l) => l.acked.map((a) => a.message)), ...retried, queued, final];
  t.deepEqual(acked.filter((m) => stored.get(m.id)?.body !== m.body).map(brief), [], "every acknowledged send is stored");
  t.is(stored.size, new Set(acked.map((m) => m.id)).size, "and nothing else is");
  t.false(
    history.some((m) => m.clientMsgId === "while-down"),
    "the refused stream send was not stored",
  );

  for (const inbox of [ritaIn, rosaIn]) {
    const got = () => inbox.messages.filter((m) => m.conversationId === group.conversationId);
    await inbox.until(() => got().some((m) => m.seq === history.length), "everything", WAIT_MS);
    t.deepEqual(got().map(brief), history.map(brief));
  }
  t.log(
    `Postgres down for ${restartedAt - downAt} ms: ${refused.length} unary sends refused with UNAVAILABLE (all stored once when retried), ` +
      `${history.length} messages in the end`,
  );
});
