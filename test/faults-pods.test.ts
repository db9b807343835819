// Pod faults under traffic (design.md, "Live means live", guarantees 4–6,
// "Authentication"): a pod paused with SIGSTOP and resumed, a pod SIGKILLed and
// restarted under the same POD_NAME, and connections recycled by a short
// GRPC_MAX_CONNECTION_AGE_SECONDS. Each test has its own database, Redis and
// two pods and runs alone. The common checks are in helpers/faults.ts.
import anyTest, { type ExecutionContext, type TestFn } from "ava";
import { ParleyApi } from "../services/client/api.js";
import { eventually } from "./helpers/clients.js";
import {
  checkPresence,
  cleanupsOf,
  lastPresence,
  runFault,
  signal,
  spawnServer,
  startScene,
  TimedStream,
  WAIT_MS,
  type Scene,
  type SceneOptions,
} from "./helpers/faults.js";
import { freshDatabase, freshRedis } from "./helpers/infra.js";
import { RawStream } from "./helpers/raw-stream.js";

const test = anyTest as TestFn<unknown>;

async function podScene(t: ExecutionContext, options: Partial<SceneOptions> = {}): Promise<Scene> {
  const cleanup = cleanupsOf(t);
  const redis = await freshRedis();
  cleanup(() => redis.stop());
  return startScene(t, { databaseUrl: await freshDatabase(), redisUrl: redis.url, ...options }, cleanup);
}

/** How long pod 2 is paused: past its presence lease (PRESENCE_TTL_SECONDS=3), inside the 5 s live bound. */
const PAUSE_MS = 4_000;

test.serial(
  "A pod paused (SIGSTOP) for 4 s and resumed: ben's streams on it get everything, presence is repaired, the revocation holds on both pods",
  async (t) => {
    const scene = await podScene(t, { presenceTtlSeconds: 3 });
    const p2 = scene.pods[1];
    let resumedAt = Number.POSITIVE_INFINITY;
    const result = await runFault(t, scene, {
      inject: async () => signal(p2.process.pid, "SIGSTOP"),
      atOnce: () => scene.send("while pod 2 is paused", "paused-1"),
      holdMs: PAUSE_MS,
      repair: async () => {
        signal(p2.process.pid, "SIGCONT");
        resumedAt = Date.now();
      },
      // A paused pod cannot act: its revocation clock starts when it runs again.
      awakeFrom: (pod) => (pod === p2 ? resumedAt : 0),
    });
    t.true(lastPresence(scene.anaW, scene.ben.username), "ana is told ben is online in the end");
    t.log(`pod paused: ${result.notes.join("; ")}`);
  },
);

test.serial(
  "A pod SIGKILLed and restarted under the same POD_NAME: nothing acked is lost, its dead streams stop counting, the revocation holds on the new process",
  async (t) => {
    const scene = await podScene(t);
    const [p1, p2] = scene.pods;
    // rex is online only through a stream on pod 2, which the kill ends.
    const rexOnP2 = new TimedStream(scene.track(RawStream.connect(p2.address, scene.rex.token).hello()));
    await rexOnP2.raw.until(() => rexOnP2.raw.caughtUp, "rex's stream on pod 2", WAIT_MS);
    await scene.anaW.inbox.until(() => lastPresence(scene.anaW, scene.rex.username) === true, "ana sees rex online", WAIT_MS);
    let killedAt = 0;
    let offlineMs = "";
    const result = await runFault(t, scene, {
      inject: async () => {
        p2.kill("SIGKILL");
        await p2.exited;
        killedAt = Date.now();
      },
      repair: async () => {
        // The same name and port, as a Deployment's pod restarted in place.
        scene.pods[1] = await spawnServer({ ...scene.env, POD_NAME: p2.pod }, p2.port);
      },
      afterRepair: async () => {
        // rex has no stream anywhere now: the new process under the old name must not keep him online.
        const api = scene.track(new ParleyApi(p1.address, scene.ben.token));
        await eventually(
          () => api.listOnlineUsers(),
          (names) => !names.includes(scene.rex.username),
          Math.max(0, killedAt + 30_000 - Date.now()),
        ).catch(() => undefined);
        const presenceMs = await checkPresence(t, scene, [scene.rex.username], Math.max(0, killedAt + 30_000 - Date.now()));
        offlineMs = `rex listed offline and ana told ${Date.now() - killedAt} ms after the kill (check took ${presenceMs} ms)`;
      },
      revoke: "after",
      probeAfterRepair: true,
    });
    t.is(rexOnP2.raw.status?.code !== undefined, true, "rex's stream on the killed pod ended");
    t.log(`pod killed and restarted: ${offlineMs}; ${result.notes.join("; ")}`);
  },
);

test.serial(
  "Connections recycled every 2 s (GRPC_MAX_CONNECTION_AGE_SECONDS): streams get drain, resume and miss nothing; ben is never announced offline",
  async (t) => {
    const scene = await podScene(t, { env: { GRPC_MAX_CONNECTION_AGE_SECONDS: "2", GRPC_MAX_CONNECTION_AGE_GRACE_SECONDS: "2" } });
    const presenceStart = scene.anaW.inbox.presence.length;
    const result = await runFault(t, scene, {
      inject: async () => undefined,
      holdMs: 8_000,
      repair: async () => undefined,
    });
    const benDrains = scene.benW.drains.length;
    t.true(benDrains >= 2, `ben's reconnecting client was drained at least twice in 8 s (got ${benDrains})`);
    const raw = scene.benRaw.raw;
    t.true(
      raw.frames.some((f) => f.drain),
      "ben's raw stream got drain before its connection was recycled",
    );
    const drainIndex = raw.frames.findIndex((f) => f.drain);
    t.true(drainIndex >= 0 && raw.status !== undefined, "the recycled raw stream was then ended");
    t.deepEqual(
      scene.anaW.inbox.presence.slice(presenceStart).filter((p) => p.username === scene.ben.username && !p.online),
      [],
      "ben moves between streams: never announced offline",
    );
    t.log(`recycling: ben drained ${benDrains}×, raw stream ${raw.status ? `ended code ${raw.status.code}` : "open"}; ${result.notes.join("; ")}`);
  },
);
