// The transport floor's relay (scripts/bench/grpc-relay-server.ts), checked
// small: two relay processes on one Redis, driven by the bench's Parley
// driver, must deliver every fanout and DM message to every recipient exactly
// once, across the two processes; and a send to a group the sender is not in
// is refused, not relayed. Its capacity is only a floor if it does the work.
import test from "ava";
import { ParleyDriver } from "../scripts/bench/parley-driver.js";
import { spawnServer, waitListening, type ServerProcess } from "../scripts/bench/processes.js";
import { Session, type System } from "../scripts/bench/session.js";
import { buildPopulation, usersOf } from "../scripts/bench/workload.js";
import { ReconnectingClient } from "../services/client/reconnecting-client.js";
import { freshRedis } from "./helpers/infra.js";

const RELAY = new URL("../scripts/bench/grpc-relay-server.ts", import.meta.url).pathname;

async function relays(t: import("ava").ExecutionContext): Promise<{ name: string; address: string; pids: () => number[] }[]> {
  const redis = await freshRedis();
  t.teardown(() => redis.stop());
  const started: ServerProcess[] = [];
  t.teardown(async () => {
    for (const proc of started) await proc.stop("SIGTERM", 5_000);
  });
  return Promise.all(
    ["relay-1", "relay-2"].map(async (name) => {
      const proc = spawnServer(name, process.execPath, ["--import", "tsx", RELAY], {
        ...process.env,
        REDIS_URL: redis.url,
        RELAY_PORT: "0",
        RELAY_NAME: name,
      });
      started.push(proc);
      const port = await waitListening(proc, 60_000);
      return { name, address: `127.0.0.1:${port}`, pids: () => [proc.pid] };
    }),
  );
}

test.serial("two relays deliver every fanout and DM message to every recipient exactly once, across processes", async (t) => {
  const backends = await relays(t);
  const population = buildPopulation("rly", 6, 3, 2);
  const driver = new ParleyDriver(backends.map((b) => b.address));
  await driver.prepare(population);
  const system: System = { name: "parley", driver, backends, dependencies: [] };
  for (const scenario of ["fanout", "dm"] as const) {
    const session = await Session.open(system, population, usersOf(population, scenario));
    try {
      const step = await session.run({ scenario, rate: 20, durationMs: 2_000, drainMs: 10_000, bodyBytes: 64, tag: `rly${scenario}` });
      const { counts } = step;
      t.is(counts.acked, 40, scenario);
      t.is(counts.expected, 40 * (scenario === "fanout" ? 3 : 2), scenario);
      t.is(counts.delivered, counts.expected, scenario);
      t.is(counts.lost, 0, scenario);
      t.is(counts.duplicates, 0, scenario);
    } finally {
      await session.close();
    }
  }
});

test.serial("a relay refuses a send to a group the sender is not in", async (t) => {
  const [relay] = await relays(t);
  const client = new ReconnectingClient({ address: relay.address, token: "outsider" });
  t.teardown(() => client.close());
  await new Promise<void>((resolve) => client.once("caughtUp", resolve).start());
  const error = await t.throwsAsync(client.send({ group: "nobody-invited-me" }, "hello", "c1"));
  t.regex(error?.message ?? "", /not a member/);
});
