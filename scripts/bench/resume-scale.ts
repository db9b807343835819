// The resume scenario at scale, Parley only: `clients` receivers' streams
// (1000 in a full run) live on pod 1, spread over load-generator processes
// (resume-clients.ts), each on its own HTTP/2 connection with pod 2 as its
// failover; they belong to `users` members of one group. A sender on pod 2
// keeps sending to the group; pod 1 gets SIGTERM and drains. Measured: the
// time from the SIGTERM until every receiver is live again (caught up), and
// per receiver the acknowledged messages it never got (lost) and those it got
// twice (duplicates, after the client's own de-duplication by seq).
import { fileURLToPath } from "node:url";
import { ParleyApi } from "../../services/client/api.js";
import { ReconnectingClient } from "../../services/client/reconnecting-client.js";
import { IpcWorker } from "./ipc-worker.js";
import { signUpMany } from "./memory.js";
import { mapLimit } from "./parley-driver.js";
import type { ClientReport, ResumeWorkerReply, ResumeWorkerRequest } from "./resume-clients.js";
import { sleep } from "./session.js";
import type { Infra } from "./setup.js";
import { encodeBody, openLoop } from "./workload.js";

const WORKER = fileURLToPath(new URL("./resume-clients.ts", import.meta.url));
const now = () => performance.timeOrigin + performance.now();

export interface ResumeScaleOptions {
  clients: number;
  users: number;
  workers: number;
  /** Messages per second to the group (each reaches every client). */
  rate: number;
  /** Sending before the SIGTERM, and after the last receiver is back. */
  leadMs: number;
  tailMs: number;
  /** Sending stops this long after the SIGTERM even if some never come back. */
  maxMs: number;
  /** Longest wait for the last deliveries after sending stops. */
  drainMs: number;
  bodyBytes: number;
  tag: string;
}

export interface ResumeScaleResult {
  clients: number;
  users: number;
  live: number;
  resumed: number;
  resumedOn: Record<string, number>;
  /** From the SIGTERM until half of, and all of, the clients were live again, ms. */
  resumeMsP50: number;
  resumeMsMax: number;
  /** Per client, drain frame → `ready` from the new pod (connect, authenticate, open), and `ready` → caught up (replay), ms. */
  drainToReadyMsP50: number;
  drainToReadyMsMax: number;
  readyToCaughtUpMsP50: number;
  readyToCaughtUpMsMax: number;
  /** The load-generator processes' CPU during the outage (% of one core each): near 100 means they were the limit. */
  workerCpuPercent: number[];
  /** Presence frames all clients received from the first drain frame to the report: what the move cost in presence traffic. */
  presenceFrames: number;
  /** From the SIGTERM to the drained pod's exit, ms. */
  exitMs: number;
  sent: number;
  acked: number;
  /** Acknowledged messages sent between the SIGTERM and the last resume. */
  sentDuringOutage: number;
  /** (client, acknowledged message) pairs never delivered; deliveries of a message a client already had. */
  lost: number;
  duplicates: number;
}

type Worker = IpcWorker<ResumeWorkerRequest, ResumeWorkerReply>;
const ask = async <K extends string>(worker: Worker, request: ResumeWorkerRequest, key: K) =>
  ((await worker.request(request)) as Record<K, unknown>)[key];

export async function runResumeAtScale(
  infra: Pick<Infra, "pods" | "restart">,
  options: ResumeScaleOptions,
  say: (line: string) => void,
): Promise<ResumeScaleResult> {
  const [victim, survivor] = infra.pods;
  const tokens = await signUpMany(
    survivor.address,
    Array.from({ length: options.users }, (_, i) => `${options.tag}s${i}`),
  );
  const group = `${options.tag}sg`;
  await new ParleyApi(survivor.address, tokens[0]).createGroup(group);
  await mapLimit(tokens.slice(1), 8, async (token) => {
    const api = new ParleyApi(survivor.address, token);
    try {
      await api.joinGroup(group);
    } finally {
      api.close();
    }
  });

  const workers: Worker[] = Array.from({ length: options.workers }, () => new IpcWorker(WORKER));
  const sender = new ReconnectingClient({ address: survivor.address, token: tokens[0] });
  try {
    const share = (w: number) => Math.floor(options.clients / workers.length) + (w < options.clients % workers.length ? 1 : 0);
    let from = 0;
    const opened = await Promise.all(
      workers.map((worker, w) => {
        const count = share(w);
        const request = { open: { addresses: [victim.address, survivor.address], tokens, count, from, tag: options.tag } };
        from += count;
        return ask(worker, request, "opened") as Promise<{ live: number; failed: number; firstError?: string }>;
      }),
    );
    const live = opened.reduce((n, o) => n + o.live, 0);
    const firstError = opened.find((o) => o.firstError)?.firstError;
    say(
      `resume at scale: ${live}/${options.clients} clients of ${options.users} users live on ${victim.name}${firstError ? ` (${firstError})` : ""}`,
    );
    await new Promise<void>((resolve) => sender.once("caughtUp", resolve).start());

    const sentAt: number[] = [];
    const acked = new Set<number>();
    let killedAt = 0;
    let exitedAt = 0;
    let allBackAt = 0;
    const stop = new AbortController();
    const killTimer = setTimeout(() => {
      killedAt = now();
      void victim.process.exited.then(() => (exitedAt = now()));
      void victim.process.stop("SIGTERM", 30_000);
    }, options.leadMs);
    // Polls the workers until everyone is back and the tail has passed (or the bound): then sending stops.
    const watching = (async () => {
      while (!stop.signal.aborted) {
        await sleep(100);
        if (killedAt === 0) continue;
        const statuses = await Promise.all(workers.map((w) => ask(w, { status: true }, "status") as Promise<{ resumed: number }>));
        if (allBackAt === 0 && statuses.reduce((n, s) => n + s.resumed, 0) >= live) allBackAt = now();
        if ((allBackAt > 0 && now() - allBackAt >= options.tailMs) || now() - killedAt > options.maxMs) stop.abort();
      }
    })();
    await openLoop({
      rate: options.rate,
      durationMs: options.leadMs + options.maxMs + options.tailMs,
      signal: stop.signal,
      send: (k) => {
        sentAt[k] = now();
        sender.send({ group }, encodeBody(options.tag, k, performance.now(), options.bodyBytes), `${options.tag}-${k}`).then(
          () => acked.add(k),
          () => undefined,
        );
      },
    });
    clearTimeout(killTimer);
    stop.abort();
    await watching;
    // Until every live client has every acknowledged message, or the drain bound.
    const deadline = performance.now() + options.drainMs;
    while (performance.now() < deadline) {
      const statuses = await Promise.all(workers.map((w) => ask(w, { status: true }, "status") as Promise<{ received: number }>));
      if (statuses.reduce((n, s) => n + s.received, 0) >= acked.size * live && acked.size === sentAt.length) break;
      await sleep(100);
    }
    const workerReports = await Promise.all(
      workers.map((w) => ask(w, { report: true }, "report") as Promise<{ clients: ClientReport[]; cpuPercent: number; presenceFrames: number }>),
    );
    const reports = workerReports.flatMap((w) => w.clients);
    await victim.process.exited;

    const resumedOn: Record<string, number> = {};
    let lost = 0;
    let duplicates = 0;
    const times: number[] = [];
    for (const r of reports) {
      duplicates += r.duplicates;
      if (r.resumedAt !== null) {
        times.push(r.resumedAt - killedAt);
        resumedOn[r.pod] = (resumedOn[r.pod] ?? 0) + 1;
      }
      const got = new Set(r.received);
      for (const k of acked) if (!got.has(k)) lost += 1;
    }
    times.sort((a, b) => a - b);
    const phase = (pick: (r: ClientReport) => number | null) =>
      reports
        .map(pick)
        .filter((x): x is number => x !== null && Number.isFinite(x))
        .sort((a, b) => a - b);
    const toReady = phase((r) => (r.readyAt !== null && r.drainAt !== null ? r.readyAt - r.drainAt : null));
    const toCaughtUp = phase((r) => (r.resumedAt !== null && r.readyAt !== null ? r.resumedAt - r.readyAt : null));
    const p50 = (xs: number[]) => (xs.length ? xs[Math.floor((xs.length - 1) / 2)] : Number.NaN);
    const max = (xs: number[]) => (xs.length ? xs[xs.length - 1] : Number.NaN);
    const lastResume = times.length > 0 ? killedAt + times[times.length - 1] : now();
    return {
      clients: options.clients,
      users: options.users,
      live,
      resumed: times.length,
      resumedOn,
      resumeMsP50: times.length ? times[Math.floor((times.length - 1) / 2)] : Number.NaN,
      resumeMsMax: times.length === live ? times[times.length - 1] : Number.POSITIVE_INFINITY,
      drainToReadyMsP50: p50(toReady),
      drainToReadyMsMax: max(toReady),
      readyToCaughtUpMsP50: p50(toCaughtUp),
      readyToCaughtUpMsMax: max(toCaughtUp),
      workerCpuPercent: workerReports.map((w) => w.cpuPercent),
      presenceFrames: workerReports.reduce((n, w) => n + w.presenceFrames, 0),
      exitMs: (exitedAt || now()) - killedAt,
      sent: sentAt.length,
      acked: acked.size,
      sentDuringOutage: [...acked].filter((k) => sentAt[k] >= killedAt && sentAt[k] <= lastResume).length,
      lost,
      duplicates,
    };
  } finally {
    sender.close();
    await Promise.all(workers.map((w) => w.close({ close: true })));
    await infra.restart(victim);
  }
}
