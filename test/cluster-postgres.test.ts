// Postgres down and back (design.md, guarantee 1 and "UNAVAILABLE: a dependency
// is down"): two pods on a Postgres of this file's own, which the test stops and
// restarts on the same data folder and port while messages flow. Sends fail
// with UNAVAILABLE meanwhile, nothing half-written is acknowledged, and once
// Postgres is back every send works and every receiver has everything.
import { join } from "node:path";
import { credentials, status, type ServiceError } from "@grpc/grpc-js";
import anyTest, { type TestFn } from "ava";
import { ChatServiceClient, type Message, type ServerFrame, type Target } from "../gen/parley/chat/v1/chat.js";
import { bearer, ParleyApi } from "../services/client/api.js";
import { startPostgres } from "../scripts/local-services.js";
import { connect, eventually, newUser, uniqueName, type Inbox } from "./helpers/clients.js";
import { freshRedis, scratchDir } from "./helpers/infra.js";
import { spawnServer, type ChildServer } from "./helpers/servers.js";

const test = anyTest as TestFn<unknown>;
const WAIT_MS = 30_000;

// ---------------------------------------------------------------------------
// Helpers of this file

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const range = (from: number, to: number) => Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);
const brief = (m: Message) => ({ id: m.id, seq: m.seq, sender: m.sender, body: m.body });

async function until(check: () => boolean, what: string, timeoutMs = WAIT_MS): Promise<void> {
  await eventually(async () => check(), Boolean, timeoutMs).catch(() => {
    throw new Error(`timed out waiting for ${what}`);
  });
}


/** Sends in a row until stopped; records what was acknowledged and what was refused (with its id, to retry). */
class SendLoop {
  readonly acked: { at: number; message: Message }[] = [];
  readonly refused: { at: number; code: number; clientMsgId: string; body: string }[] = [];
  private running = true;
  readonly done: Promise<void>;

  constructor(
    readonly name: string,
    send: (body: string, clientMsgId: string) => Promise<Message>,
  ) {
    this.done = (async () => {
      for (let i = 0; this.running; i++) {
        const at = Date.now();
        const [body, clientMsgId] = [`${name} ${i}`, `${name}-${i}`];
        try {
          this.acked.push({ at, message: await send(body, clientMsgId) });
        } catch (err) {
          this.refused.push({ at, code: (err as ServiceError).code, clientMsgId, body });
          await sleep(100);
        }
        await sleep(10);
      }
    })();
  }

  ackedSince(time: number): number {
    return this.acked.filter((a) => a.at >= time).length;
  }

  stop(): Promise<void> {
    this.running = false;
    return this.done;
  }
}

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
  const env = { DATABASE_URL: postgres.url, REDIS_URL: redis.url, RATE_LIMIT_PER_SECOND: "100000", RATE_LIMIT_BURST: "100000" };
  const pods: ChildServer[] = await Promise.all(["pod-a", "pod-b"].map((POD_NAME) => spawnServer({ ...env, POD_NAME })));
  for (const pod of pods) {
    cleanups.push(async () => {
      pod.kill("SIGTERM");
      const timer = setTimeout(() => pod.kill("SIGKILL"), 25_000);
      await pod.exited;
      clearTimeout(timer);
    });
  }
  const [a, b] = pods;
  const track = <T extends { close(): void }>(c: T): T => (cleanups.push(() => c.close()), c);

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
  const chat = track(new ChatServiceClient(a.address, credentials.createInsecure()));
  const raw = chat.connect(bearer(rosa.token));
  cleanups.push(() => raw.cancel());
  raw.on("error", () => undefined);
  const rawFrames: ServerFrame[] = [];
  raw.on("data", (f: ServerFrame) => rawFrames.push(f));
  raw.write({ hello: { cursors: [] } });
  await until(() => rawFrames.some((f) => f.caughtUp), "raw stream caught up");

  const loops = [
    new SendLoop("sam", (body, id) => samOnB.send(to, body, id)),
    new SendLoop("rita", (body, id) => ritaIn.client.send(to, body, id)),
  ];
  const [samLoop] = loops;
  await until(() => loops.every((l) => l.acked.length >= 5), "traffic before the outage");

  await postgres.stop();
  const downAt = Date.now();

  // While it is down: unary sends are refused with UNAVAILABLE, and so is a send on a stream.
  await until(() => samLoop.refused.filter((r) => r.at >= downAt).length >= 3, "refused sends");
  raw.write({ send: { clientMsgId: "while-down", to, body: "while Postgres is down" } });
  await until(() => rawFrames.some((f) => f.sendFailed || f.sent), "an answer to the raw send");
  t.deepEqual(
    rawFrames.filter((f) => f.sendFailed || f.sent).map((f) => f.sendFailed?.code),
    [status.UNAVAILABLE],
    "the stream send is refused, not acknowledged",
  );
  const ritaPending = ritaIn.client.send(to, "queued while Postgres is down", "rita-while-down");
  await sleep(1000);
  t.is(samLoop.ackedSince(downAt), 0, "no unary send is acknowledged while Postgres is down");

  await postgres.start();
  const restartedAt = Date.now();
  await until(() => loops.every((l) => l.ackedSince(restartedAt) >= 5), "sends after the restart");
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

  const history: Message[] = [];
  for (let beforeSeq = 0; ; ) {
    const page = await sam.api.getHistory(group.conversationId, beforeSeq, 200);
    history.unshift(...page.messages);
    if (!page.hasMore || page.messages.length === 0) break;
    beforeSeq = page.messages[0].seq;
  }
  t.deepEqual(
    history.map((m) => m.seq),
    range(1, history.length),
    "no gap: a failed send left no half-written seq",
  );
  t.is(new Set(history.map((m) => `${m.sender}/${m.clientMsgId}`)).size, history.length, "each send stored once");
  const stored = new Map(history.map((m) => [m.id, m]));
  const acked = [...loops.flatMap((l) => l.acked.map((a) => a.message)), ...retried, queued, final];
  t.deepEqual(
    acked.filter((m) => stored.get(m.id)?.body !== m.body).map(brief),
    [],
    "every acknowledged send is stored",
  );
  t.is(stored.size, new Set(acked.map((m) => m.id)).size, "and nothing else is");
  t.false(history.some((m) => m.clientMsgId === "while-down"), "the refused stream send was not stored");

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
