// One system's virtual users connected for a while, and the measured runs
// (steps) made on those connections: open-loop sending for a window, a
// bounded drain, exact loss and duplicate counts, the servers' CPU and RSS
// (sampled by a process of its own), and the load generator's own CPU.
import { cpuOf, rssOf, type ProcGroup, type ProcUsage } from "./procstat.js";
import { SamplerProcess } from "./sampler-process.js";
import {
  DeliveryTracker,
  encodeBody,
  openLoop,
  routeOf,
  type DeliveryCounts,
  type Driver,
  type Endpoint,
  type Population,
  type ScenarioName,
  type SystemName,
} from "./workload.js";

/** One server of a system under test: where clients connect, and which processes to measure. */
export interface BackendRef {
  readonly name: string;
  readonly address: string;
  /** The server's processes now (none when it runs inside this process, as in the smoke test). */
  pids(): number[];
}

/** A system under test: its driver, its server processes and what else it leans on. */
export interface System {
  name: SystemName;
  driver: Driver;
  backends: BackendRef[];
  /** Shared servers it uses (Postgres for Parley, Redis for both), measured with it. */
  dependencies: ProcGroup[];
}

export interface StepOptions {
  scenario: ScenarioName;
  /** Offered messages per second, all senders together. */
  rate: number;
  durationMs: number;
  drainMs: number;
  bodyBytes: number;
  /** Unique in the whole benchmark: it tags bodies and client message ids. */
  tag: string;
}

export interface StepResult {
  system: SystemName;
  scenario: ScenarioName;
  rate: number;
  durationS: number;
  connections: number;
  recipientsPerMessage: number;
  counts: DeliveryCounts;
  /** Acknowledged sends per second inside the window. */
  sendsPerSec: number;
  /** First deliveries per second inside the window. */
  deliveriesPerSec: number;
  /** What the offered rate asks for: rate × recipients per message. */
  offeredDeliveriesPerSec: number;
  /** deliveriesPerSec ÷ offeredDeliveriesPerSec. */
  deliveredFraction: number;
  /** Processes over the window: each backend, its dependencies, the load generator and the sampler. */
  procs: ProcUsage[];
  /** The load generator's CPU over the window (process.cpuUsage), in % of one core. */
  loadgenCpuPercent: number;
  /**
   * The load generator used at least LOADGEN_SATURATED_PERCENT of a core: it may
   * have sent late or read late, so the step measured the harness, not the servers.
   */
  invalid: boolean;
  /** Sum of the backends' and dependencies' CPU, in % of one core. */
  serverCpuPercent: number;
  /** Server CPU-seconds per 1000 deliveries inside the window (the servers' cost of a delivery). */
  cpuSecondsPer1000: number;
  /** First deliveries by the window's end plus SLO_P99_MS, ÷ what the offered rate asks for: the SLO's delivered share. */
  sloDeliveredFraction: number;
  /** Reconnects and streams ended by the server for being slow, during the window and the drain. */
  reconnects: number;
  endedSlow: number;
  /** RSS growth per connection of each backend when this session connected. */
  rssPerConnection: { name: string; bytes: number }[];
}

/** The latency objective of capacity: p99 at or under this. */
export const SLO_P99_MS = 50;
/** The delivery objective of capacity: at least this share of the offered deliveries arrive within the window. */
export const SLO_DELIVERED = 0.99;

/** At or above this CPU (% of one core) the single-threaded load generator counts as saturated. */
export const LOADGEN_SATURATED_PERCENT = 90;
const SETTLE_MS = 500;

/** Users are spread over the backends (user i on backend i mod n), each listing the others for failover. */
export function homeRoute(backends: BackendRef[]): (user: number) => Endpoint[] {
  return (user) => backends.map((_, j) => backends[(user + j) % backends.length]).map((b) => ({ name: b.name, address: b.address }));
}

export class Session {
  private tracker: DeliveryTracker | undefined;

  private constructor(
    private readonly sampler: SamplerProcess,
    readonly system: System,
    readonly population: Population,
    readonly users: number[],
    readonly rssPerConnection: { name: string; bytes: number }[],
  ) {}

  /**
   * Connects `users` and measures what the connections cost each backend in
   * RSS: the median of a few samples after connecting minus the same before.
   * Garbage collection moves RSS by megabytes, so with few connections per
   * backend this is a rough figure (it can even come out below zero).
   */
  static async open(system: System, population: Population, users: number[]): Promise<Session> {
    const groups = system.backends.map(backendGroup);
    const before = await Promise.all(groups.map((g) => medianRss(g)));
    const sampler = await SamplerProcess.start();
    const session = new Session(sampler, system, population, users, []);
    system.driver.onMessage((receiver, body) => session.tracker?.receive(receiver, body));
    try {
      await system.driver.connect(users, homeRoute(system.backends));
    } catch (err) {
      sampler.stop();
      await system.driver.disconnect();
      throw err;
    }
    await sleep(SETTLE_MS);
    const after = await Promise.all(groups.map((g) => medianRss(g)));
    groups.forEach((group, i) => {
      const connections = users.filter((u) => u % system.backends.length === i).length;
      session.rssPerConnection.push({ name: group.name, bytes: connections > 0 ? (after[i] - before[i]) / connections : NaN });
    });
    return session;
  }

  async run(options: StepOptions): Promise<StepResult> {
    const { system, population } = this;
    const tracker = new DeliveryTracker(options.tag, population.names.length);
    tracker.sloGraceMs = SLO_P99_MS;
    const eventsBefore = system.driver.streamEvents();
    this.tracker = tracker;
    const serverGroups = [...system.backends.map(backendGroup), ...system.dependencies];

    await this.sampler.begin(serverGroups);
    const loadgenStart = { cpu: process.cpuUsage(), at: performance.now() };
    const window = await openLoop({
      rate: options.rate,
      durationMs: options.durationMs,
      onStart: (start) => (tracker.windowEnd = start + options.durationMs),
      send: (k, intendedAt) => {
        const route = routeOf(population, options.scenario, k);
        tracker.sending(k, route, intendedAt);
        system.driver.send(route.from, route.to, encodeBody(options.tag, k, intendedAt, options.bodyBytes), `${options.tag}-${k}`).then(
          () => tracker.ack(k),
          () => tracker.fail(),
        );
      },
    });
    const loadgen = loadgenUsage(loadgenStart);
    const procs = [...(await this.sampler.end()), loadgen];

    // Let the tail arrive, for a bounded time, before counting what is lost.
    const drainDeadline = window.end + options.drainMs;
    while (!tracker.complete && performance.now() < drainDeadline) await sleep(20);
    const drainMs = Math.max(0, performance.now() - window.end);
    const counts = tracker.result(drainMs);
    const eventsAfter = system.driver.streamEvents();
    this.tracker = undefined;

    const seconds = options.durationMs / 1000;
    const recipients = routeOf(population, options.scenario, 0).recipients.length;
    const deliveriesPerSec = counts.deliveredInWindow / seconds;
    const offered = options.rate * recipients;
    const serverNames = new Set(serverGroups.map((g) => g.name));
    const serverCpuPercent = procs.filter((p) => serverNames.has(p.name)).reduce((sum, p) => sum + p.cpuPercent, 0);
    return {
      system: system.name,
      scenario: options.scenario,
      rate: options.rate,
      durationS: seconds,
      connections: this.users.length,
      recipientsPerMessage: recipients,
      counts,
      sendsPerSec: counts.ackedInWindow / seconds,
      deliveriesPerSec,
      offeredDeliveriesPerSec: offered,
      deliveredFraction: deliveriesPerSec / offered,
      procs,
      loadgenCpuPercent: loadgen.cpuPercent,
      invalid: loadgen.cpuPercent >= LOADGEN_SATURATED_PERCENT,
      serverCpuPercent,
      cpuSecondsPer1000: deliveriesPerSec > 0 ? (serverCpuPercent / 100 / deliveriesPerSec) * 1000 : NaN,
      sloDeliveredFraction: counts.deliveredInSloWindow / seconds / offered,
      reconnects: eventsAfter.reconnects - eventsBefore.reconnects,
      endedSlow: eventsAfter.endedSlow - eventsBefore.endedSlow,
      rssPerConnection: this.rssPerConnection,
    };
  }

  async close(): Promise<void> {
    this.tracker = undefined;
    this.sampler.stop();
    await this.system.driver.disconnect();
  }
}

/** This process's CPU since `start`, in % of one core: the load generator's own cost. */
function loadgenUsage(start: { cpu: NodeJS.CpuUsage; at: number }): ProcUsage {
  const used = process.cpuUsage(start.cpu);
  const seconds = (performance.now() - start.at) / 1000;
  const rss = process.memoryUsage.rss();
  return { name: "loadgen", cpuPercent: seconds > 0 ? ((used.user + used.system) / 1e6 / seconds) * 100 : NaN, rssBytes: rss, peakRssBytes: rss };
}

export function backendGroup(backend: BackendRef): ProcGroup {
  return { name: backend.name, pids: () => backend.pids() };
}

/** The median of five RSS samples 100 ms apart. */
async function medianRss(group: ProcGroup): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < 5; i++) {
    if (i > 0) await sleep(100);
    samples.push(rssOf(group));
  }
  return samples.sort((a, b) => a - b)[2];
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Waits (at most `maxMs`) until the given processes are nearly idle (under 15 % of a core together), so one run's tail does not bill the next. */
export async function quiesce(groups: ProcGroup[], maxMs = 3_000): Promise<void> {
  const deadline = performance.now() + maxMs;
  while (performance.now() < deadline) {
    const before = groups.reduce((sum, g) => sum + cpuOf(g), 0);
    await sleep(250);
    if (((groups.reduce((sum, g) => sum + cpuOf(g), 0) - before) / 0.25) * 100 < 15) return;
  }
}
