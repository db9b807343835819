// The benchmark's load generator, checked small: its Parley driver runs the
// fanout workload for 2 s at a low rate against a server in this process, and
// every message must reach every member exactly once. The tracker test shows
// that the harness would see loss and duplicates if there were any.
import test from "ava";
import { ParleyDriver } from "../scripts/bench/parley-driver.js";
import { Session, type System } from "../scripts/bench/session.js";
import { buildPopulation, DeliveryTracker, encodeBody, routeOf, usersOf } from "../scripts/bench/workload.js";
import { freshDatabase } from "./helpers/infra.js";
import { startServer } from "./helpers/servers.js";

test("the Parley driver's fanout delivers every message to every member exactly once", async (t) => {
  const server = await startServer({
    DATABASE_URL: await freshDatabase(),
    REDIS_URL: undefined,
    RATE_LIMIT_PER_SECOND: "100000",
    RATE_LIMIT_BURST: "100000",
  });
  t.teardown(() => server.shutdown());
  const population = buildPopulation("smk", 6, 3, 2);
  const driver = new ParleyDriver([server.address]);
  await driver.prepare(population);
  const system: System = { name: "parley", driver, backends: [{ name: "in-process", address: server.address, pids: () => [] }], dependencies: [] };

  const session = await Session.open(system, population, usersOf(population, "fanout"));
  let step: Awaited<ReturnType<Session["run"]>>;
  try {
    step = await session.run({ scenario: "fanout", rate: 20, durationMs: 2_000, drainMs: 15_000, bodyBytes: 64, tag: "smk1" });
  } finally {
    await session.close();
  }
  const { counts } = step;
  t.is(counts.scheduled, 40);
  t.is(counts.acked, 40);
  t.is(counts.unacked, 0);
  t.is(counts.expected, 40 * 3);
  t.is(counts.delivered, 40 * 3);
  t.is(counts.lost, 0);
  t.is(counts.duplicates, 0);
  t.is(counts.stale, 0);
  t.is(counts.latency.count, 40 * 3);
  t.true(counts.latency.p50 > 0);
  // The sampler runs in its own process and reports itself; the load generator's CPU comes from this process.
  t.true(step.procs.some((p) => p.name === "sampler"));
  t.true(Number.isFinite(step.loadgenCpuPercent) && step.loadgenCpuPercent > 0);
  t.is(step.procs.find((p) => p.name === "loadgen")?.cpuPercent, step.loadgenCpuPercent);
  t.is(typeof step.invalid, "boolean");
  // Nothing ended or reconnected at this rate, and everything arrived within the window plus the latency SLO's grace.
  t.is(step.reconnects, 0);
  t.is(step.endedSlow, 0);
  t.true(counts.deliveredInSloWindow >= counts.deliveredInWindow && counts.deliveredInSloWindow <= counts.delivered);
});

test("the delivery tracker counts loss and duplicates per (receiver, message)", (t) => {
  const population = buildPopulation("trk", 4, 2, 1);
  const tracker = new DeliveryTracker("t1", population.names.length);
  const routes = [0, 1].map((k) => routeOf(population, "fanout", k));
  for (const [k, route] of routes.entries()) tracker.sending(k, route, 0);
  const body = (k: number) => encodeBody("t1", k, 0, 32);
  tracker.receive(routes[0].recipients[0], body(0));
  tracker.receive(routes[0].recipients[0], body(0)); // again: a duplicate
  tracker.ack(0);
  tracker.ack(1);
  tracker.receive(routes[1].recipients[0], body(1));
  tracker.receive(routes[1].recipients[1], body(1));
  tracker.receive(routes[1].recipients[1], encodeBody("old", 1, 0, 32)); // another run's message
  t.false(tracker.complete);
  const counts = tracker.result(0);
  t.is(counts.expected, 4);
  t.is(counts.delivered, 3);
  t.is(counts.lost, 1); // message 0 never reached its second member
  t.is(counts.duplicates, 1);
  t.is(counts.stale, 1);
});
