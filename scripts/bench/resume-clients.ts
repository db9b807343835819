// A load-generator process of the resume scenario at scale (resume-scale.ts):
// it holds receivers' streams, each on its own HTTP/2 connection, with the
// pod to be drained first and the survivor second in each one's address list,
// and records what each receives. It answers its parent over IPC:
//   { open: { addresses, tokens, count, from, tag } } → { opened: { live, failed, firstError } }
//   { status: true } → { status: { resumed, received } }: streams live again after a
//     drain, and distinct messages of `tag` received, all streams together;
//   { report: true } → { report: { clients, cpuPercent } }: each stream's record, and this
//     process's CPU (% of a core) from the first drain frame to the last resume, and the
//     presence frames its streams received since the first drain frame;
//   { close: true } → closes every stream and exits.
import { ReconnectingClient } from "../../services/client/reconnecting-client.js";
import { decodeBody } from "./workload.js";

export interface ClientReport {
  /** When the stream was live again after losing its pod (epoch ms, sub-ms precision), or null. */
  resumedAt: number | null;
  /** When the drain frame arrived, and when the new pod said `ready` (epoch ms), or null. */
  drainAt: number | null;
  readyAt: number | null;
  /** The pod it resumed on. */
  pod: string;
  /** Distinct message numbers of the tag it received. */
  received: number[];
  /** Messages of the tag it was given more than once. */
  duplicates: number;
}

export type ResumeWorkerRequest =
  | { open: { addresses: string[]; tokens: string[]; count: number; from: number; tag: string } }
  | { status: true }
  | { report: true }
  | { close: true };
export type ResumeWorkerReply =
  | { opened: { live: number; failed: number; firstError?: string } }
  | { status: { resumed: number; received: number } }
  | { report: { clients: ClientReport[]; cpuPercent: number; presenceFrames: number } };

const OPEN_CONCURRENCY = 32;
const LIVE_TIMEOUT_MS = 60_000;
const now = () => performance.timeOrigin + performance.now();

interface Tracked {
  client: ReconnectingClient;
  report: ClientReport;
  seen: Set<number>;
}
const tracked: Tracked[] = [];
let received = 0;
let resumed = 0;
/** Presence frames received by all streams since the first drain frame. */
let presenceFrames = 0;
/** This process's CPU (µs) and the time at the first drain frame and at the last resume: its load during the outage. */
let outageStart: { cpu: number; at: number } | undefined;
let outageEnd: { cpu: number; at: number } | undefined;
const cpuNow = () => {
  const { user, system } = process.cpuUsage();
  return { cpu: user + system, at: now() };
};

function openOne(addresses: string[], token: string, tag: string): Promise<true | string> {
  const client = new ReconnectingClient({
    address: addresses,
    token,
    channelOptions: { "grpc.use_local_subchannel_pool": 1 },
    backoff: { initialMs: 100, maxMs: 2_000 },
  });
  const entry: Tracked = { client, report: { resumedAt: null, drainAt: null, readyAt: null, pod: "", received: [], duplicates: 0 }, seen: new Set() };
  tracked.push(entry);
  let pod = "";
  let caughtUp = 0;
  client.on("ready", (ready) => {
    pod = ready.pod;
    if (entry.report.drainAt !== null && entry.report.readyAt === null) entry.report.readyAt = now();
  });
  client.on("presence", () => {
    if (outageStart) presenceFrames += 1;
  });
  client.on("drain", () => {
    outageStart ??= cpuNow();
    entry.report.drainAt ??= now();
  });
  client.on("message", (message) => {
    const body = decodeBody(message.body);
    if (body?.tag !== tag) return;
    if (entry.seen.has(body.k)) entry.report.duplicates += 1;
    else {
      entry.seen.add(body.k);
      received += 1;
    }
  });
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(`not live within ${LIVE_TIMEOUT_MS} ms`), LIVE_TIMEOUT_MS);
    client.on("caughtUp", () => {
      caughtUp += 1;
      if (caughtUp === 1) {
        clearTimeout(timer);
        resolve(true);
      } else if (entry.report.resumedAt === null) {
        entry.report.resumedAt = now();
        entry.report.pod = pod;
        resumed += 1;
        outageEnd = cpuNow();
      }
    });
    client.on("disconnected", ({ willRetry, code, details }) => {
      if (willRetry) return;
      clearTimeout(timer);
      resolve(`refused (${code}): ${details}`);
    });
    client.start();
  });
}

async function open(request: Extract<ResumeWorkerRequest, { open: unknown }>["open"]): Promise<ResumeWorkerReply> {
  let next = 0;
  let live = 0;
  let failed = 0;
  let firstError: string | undefined;
  const worker = async () => {
    while (next < request.count) {
      const i = next++;
      const outcome = await openOne(request.addresses, request.tokens[(request.from + i) % request.tokens.length], request.tag);
      if (outcome === true) live += 1;
      else {
        failed += 1;
        firstError ??= outcome;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(OPEN_CONCURRENCY, request.count) }, worker));
  return { opened: { live, failed, firstError } };
}

const reply = (message: ResumeWorkerReply) => process.send?.(message);
process.on("message", (message: ResumeWorkerRequest) => {
  if ("open" in message) void open(message.open).then(reply);
  else if ("status" in message) reply({ status: { resumed, received } });
  else if ("report" in message) {
    const cpuPercent =
      outageStart && outageEnd && outageEnd.at > outageStart.at
        ? ((outageEnd.cpu - outageStart.cpu) / 1000 / (outageEnd.at - outageStart.at)) * 100
        : Number.NaN;
    reply({ report: { clients: tracked.map((t) => ({ ...t.report, received: [...t.seen] })), cpuPercent, presenceFrames } });
  } else {
    for (const t of tracked) t.client.close();
    process.exit(0);
  }
});
process.on("disconnect", () => process.exit(0));
