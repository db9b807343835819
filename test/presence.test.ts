// Presence that cannot drift (design.md, guarantee 5), on real processes: two
// pods on one Postgres and one Redis, users ana and ben who share a DM, ben
// watching ana's presence frames on a raw stream on pod B, and ListOnlineUsers
// asked alongside. Every change of ana's state (a stream closed, a pod killed,
// paused and resumed, restarted under its name) reaches ben once, and agrees
// with ListOnlineUsers when it does; moving between streams reaches him not at
// all. Each test has its own database, Redis and pods, one test at a time.
import { setTimeout as sleep } from "node:timers/promises";
import anyTest, { type ExecutionContext, type TestFn } from "ava";
import { ParleyApi } from "../services/client/api.js";
import { inboxFor, newUser, type TestUser } from "./helpers/clients.js";
import { freshDatabase, freshRedis } from "./helpers/infra.js";
import { RawStream } from "./helpers/raw-stream.js";
import { NO_RATE_LIMIT, spawnServer, stopPod, type ChildServer, type Env } from "./helpers/servers.js";

const test = anyTest as TestFn<unknown>;
const TTL_SECONDS = 3;
const GRACE_SECONDS = 2;
/** The heartbeat the pods derive from TTL_SECONDS (a third of it, at least 1 s). */
const HEARTBEAT_MS = 1_000;
/** After this long with nothing announced, nothing will be: the grace, a heartbeat, and slack for a busy machine. */
const QUIET_MS = GRACE_SECONDS * 1000 + HEARTBEAT_MS + 2_000;
const BOUND_MS = 30_000;

interface Setup {
  a: ChildServer;
  b: ChildServer;
  ana: TestUser;
  ben: TestUser;
  /** ben's Connect stream on pod B. */
  watcher: RawStream;
  /** ListOnlineUsers through pod B. */
  online(): Promise<string[]>;
  /** The `online` values of the presence frames about ana that ben got, in order. */
  said(): boolean[];
  /** Resolves with the time at which ben's `n`-th frame about ana arrived, and ListOnlineUsers right then. */
  nth(n: number, timeoutMs?: number): Promise<{ at: number; listed: boolean }>;
  /** Starts another pod on the same database and Redis. */
  spawn(podName: string): Promise<ChildServer>;
  cleanup(fn: () => unknown): void;
}

async function setup(t: ExecutionContext, env: Env = {}): Promise<Setup> {
  const cleanups: (() => unknown)[] = [];
  const cleanup = (fn: () => unknown) => cleanups.push(fn);
  t.teardown(async () => {
    for (const fn of cleanups.reverse()) {
      try {
        await fn();
      } catch {
        // best effort: the rest must still run
      }
    }
  });
  const redis = await freshRedis();
  cleanup(() => redis.stop());
  const podEnv: Env = {
    DATABASE_URL: await freshDatabase(),
    REDIS_URL: redis.url,
    PRESENCE_TTL_SECONDS: String(TTL_SECONDS),
    PRESENCE_GRACE_SECONDS: String(GRACE_SECONDS),
    ...NO_RATE_LIMIT,
    ...env,
  };
  const spawn = async (POD_NAME: string) => {
    const pod = await spawnServer({ ...podEnv, POD_NAME });
    cleanup(async () => {
      pod.kill("SIGCONT");
      await stopPod(pod, 10_000);
    });
    return pod;
  };
  const [a, b] = await Promise.all([spawn("pod-a"), spawn("pod-b")]);
  const [ana, ben] = await Promise.all([newUser(b.address, "ana"), newUser(b.address, "ben")]);
  for (const user of [ana, ben]) cleanup(() => user.api.close());
  await ana.api.send({ username: ben.username }, "we share a DM, so ben hears of ana", "dm-1");

  const watcher = RawStream.connect(b.address, ben.token).hello();
  cleanup(() => watcher.close());
  await watcher.until(() => watcher.caughtUp, "ben caught up");
  const onB = new ParleyApi(b.address, ben.token);
  cleanup(() => onB.close());
  const frames = () => watcher.frames.flatMap((f) => (f.presence?.username === ana.username ? [f.presence.online] : []));
  const online = () => onB.listOnlineUsers();
  return {
    a,
    b,
    ana,
    ben,
    watcher,
    online,
    said: frames,
    nth: async (n, timeoutMs = BOUND_MS) => {
      await watcher.until(() => frames().length >= n, `presence frame #${n} about ana`, timeoutMs);
      const at = Date.now();
      return { at, listed: (await online()).includes(ana.username) };
    },
    spawn,
    cleanup,
  };
}

/** ana on a raw stream of her own on `pod`, once ben has heard she is online (frame #`n`). */
async function anaOn(s: Setup, pod: ChildServer, n = 1): Promise<RawStream> {
  const stream = RawStream.connect(pod.address, s.ana.token).hello();
  s.cleanup(() => stream.close());
  await stream.until(() => stream.caughtUp, "ana caught up");
  const { listed } = await s.nth(n);
  if (!listed) throw new Error("ana announced online but not listed");
  return stream;
}

test.serial("a stream closed: ben hears one offline, after the grace, and ListOnlineUsers agrees", async (t) => {
  const s = await setup(t);
  const stream = await anaOn(s, s.a);
  t.deepEqual(s.said(), [true]);
  const closedAt = Date.now();
  stream.close();
  const offline = await s.nth(2);
  t.false(offline.listed, "ListOnlineUsers no longer lists ana when ben hears she is offline");
  await sleep(HEARTBEAT_MS);
  t.deepEqual(s.said(), [true, false]);
  const ms = offline.at - closedAt;
  t.true(ms >= GRACE_SECONDS * 1000 - 100 && ms < BOUND_MS, `${ms} ms`);
  t.log(`stream closed → offline frame after ${ms} ms (PRESENCE_GRACE_SECONDS=${GRACE_SECONDS})`);
});

test.serial("SIGKILL of ana's pod: ben hears she is offline within the bound, and ListOnlineUsers agrees", async (t) => {
  const s = await setup(t);
  await anaOn(s, s.a);
  const killedAt = Date.now();
  s.a.kill("SIGKILL");
  const offline = await s.nth(2);
  t.false(offline.listed);
  const ms = offline.at - killedAt;
  t.true(ms <= TTL_SECONDS * 1000 + HEARTBEAT_MS + 1_000, `${ms} ms`);
  await sleep(HEARTBEAT_MS);
  t.deepEqual(s.said(), [true, false]);
  t.log(`SIGKILL → offline frame after ${ms} ms (PRESENCE_TTL_SECONDS=${TTL_SECONDS}, heartbeat ${HEARTBEAT_MS} ms)`);
});

test.serial("a pod paused past the TTL and resumed: ben hears offline, then online again, each agreeing with ListOnlineUsers", async (t) => {
  const s = await setup(t);
  const stream = await anaOn(s, s.a);
  const stoppedAt = Date.now();
  s.a.kill("SIGSTOP");
  const offline = await s.nth(2);
  t.false(offline.listed, "paused: not listed when announced offline");
  // Stay paused a little longer, then resume.
  await sleep(1_000);
  const resumedAt = Date.now();
  s.a.kill("SIGCONT");
  const online = await s.nth(3);
  t.true(online.listed, "resumed: listed when announced online");
  t.is(stream.status, undefined, "ana's stream on the resumed pod is still open");
  await sleep(HEARTBEAT_MS);
  t.deepEqual(s.said(), [true, false, true]);
  t.deepEqual(
    (await s.online()).filter((name) => name === s.ana.username),
    [s.ana.username],
  );
  t.log(
    `SIGSTOP → offline frame after ${offline.at - stoppedAt} ms; SIGCONT → online frame after ${online.at - resumedAt} ms ` +
      `(PRESENCE_TTL_SECONDS=${TTL_SECONDS})`,
  );
});

test.serial(
  "a pod SIGKILLed and restarted at once under the same POD_NAME: ben hears ana went offline, long before the lease would lapse",
  async (t) => {
    // A lease far longer than a restart: only the new process's repair can reveal that ana is gone.
    const ttlSeconds = 20;
    const s = await setup(t, { PRESENCE_TTL_SECONDS: String(ttlSeconds) });
    await anaOn(s, s.a);
    const killedAt = Date.now();
    s.a.kill("SIGKILL");
    await s.a.exited;
    const restarted = await s.spawn("pod-a");
    const startedMs = Date.now() - killedAt;
    const offline = await s.nth(2, 15_000);
    t.false(offline.listed);
    const ms = offline.at - killedAt;
    t.true(ms < ttlSeconds * 1000, `${ms} ms`);
    await sleep(HEARTBEAT_MS);
    t.deepEqual(s.said(), [true, false]);
    t.log(
      `SIGKILL + restart of ${restarted.pod} (listening after ${startedMs} ms) → offline frame after ${ms} ms (PRESENCE_TTL_SECONDS=${ttlSeconds})`,
    );
  },
);

test.serial("ana drained (SIGTERM on her pod) and reconnected to the other pod: ben hears nothing at all", async (t) => {
  const s = await setup(t);
  const inbox = inboxFor(s.ana, [s.a.address, s.b.address]);
  s.cleanup(() => inbox.client.close());
  const pods: string[] = [];
  inbox.client.on("ready", (ready) => pods.push(ready.pod));
  inbox.client.start();
  await inbox.until(() => inbox.caughtUp > 0, "ana caught up");
  await s.nth(1);
  t.deepEqual(pods, ["pod-a"]);
  const signalledAt = Date.now();
  s.a.kill("SIGTERM");
  await inbox.until(() => inbox.caughtUp > 1, "ana caught up on the other pod", BOUND_MS);
  const movedMs = Date.now() - signalledAt;
  t.deepEqual(pods, ["pod-a", "pod-b"]);
  t.deepEqual(await s.a.exited, { code: 0, signal: null });
  await sleep(QUIET_MS);
  t.deepEqual(s.said(), [true], "no offline/online frames for a move");
  t.true((await s.online()).includes(s.ana.username));
  t.log(`drained and resumed on pod-b in ${movedMs} ms; no presence frame in the ${QUIET_MS} ms after`);
});

test.serial("ana on two streams closes one: ben hears nothing, and she stays listed", async (t) => {
  const s = await setup(t);
  const first = await anaOn(s, s.a);
  const second = RawStream.connect(s.b.address, s.ana.token).hello();
  s.cleanup(() => second.close());
  await second.until(() => second.caughtUp, "ana's second stream caught up");
  first.close();
  await sleep(QUIET_MS);
  t.deepEqual(s.said(), [true]);
  t.true((await s.online()).includes(s.ana.username));
  second.close();
  const offline = await s.nth(2);
  t.false(offline.listed);
  t.deepEqual(s.said(), [true, false]);
});
