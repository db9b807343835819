// The fault suite's shared scene and its checks (design.md, "Delivery
// guarantees" 3–5 and "Authentication"): two pods as child processes on a real
// Postgres and Redis, ana sending DMs to ben through pod 1 while ben listens on
// pod 2, and rex, whose token is revoked during or after the fault. Each
// faults-*.test.ts file breaks something in the middle and then asserts what
// the clients observed with the checks below.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { status, type ServiceError } from "@grpc/grpc-js";
import type { ExecutionContext } from "ava";
import type { Message, ServerFrame, Target } from "../../gen/parley/chat/v1/chat.js";
import { ParleyApi } from "../../services/client/api.js";
import type { ReconnectingClient } from "../../services/client/reconnecting-client.js";
import { inboxFor, newUser, pollUntil, uniqueName, type Inbox, type TestUser } from "./clients.js";
import { assertIntact, fullHistory, range } from "./history.js";
import { RawStream } from "./raw-stream.js";
import { SendLoop } from "./send-loop.js";
import { NO_RATE_LIMIT, spawnServer, stopPod, type ChildServer, type Env } from "./servers.js";

/** How long a committed message may take to reach a live stream (design.md, "Live means live"). */
export const LIVE_MS = 5_000;
/** How long a revoked session may keep working anywhere (design.md, "Authentication"). */
export const REVOKE_MS = 10_000;
/** How long a presence change may take to be announced and listed (design.md, guarantee 5). */
export const PRESENCE_MS = 30_000;
/** What the tests wait for anything else (a resume, a pod starting). */
export const WAIT_MS = 30_000;

const run = promisify(execFile);

// ---------------------------------------------------------------------------
// Life cycle

/** Registers a cleanup that runs once the test is over, whatever happened; the last registered runs first. */
export type Cleanup = (cleanup: () => unknown) => void;

/** Cleanups of one test, run in reverse order from its teardown; one that fails does not stop the others. */
export function cleanupsOf(t: ExecutionContext): Cleanup {
  const cleanups: (() => unknown)[] = [];
  t.teardown(async () => {
    for (const cleanup of cleanups.reverse()) {
      try {
        await cleanup();
      } catch {
        // best effort: the rest must still run
      }
    }
  });
  return (cleanup) => cleanups.push(cleanup);
}

/** Sends SIGSTOP or SIGCONT to a process the test started (a pod, Redis); a process that is gone is ignored. */
export function signal(pid: number | undefined, sig: "SIGSTOP" | "SIGCONT"): void {
  if (pid === undefined) return;
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

/** Runs one redis-cli command against the Redis on `port` and returns its output, e.g. `CLIENT KILL TYPE normal`. */
export async function redisCli(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await run("redis-cli", ["-p", String(port), ...args], { timeout: 5_000 });
  return stdout.trim();
}

// ---------------------------------------------------------------------------
// The scene

export interface SceneOptions {
  databaseUrl: string;
  redisUrl: string;
  /** Extra settings for both pods, e.g. a short GRPC_MAX_CONNECTION_AGE_SECONDS. */
  env?: Env;
  /** PRESENCE_TTL_SECONDS of both pods. Default 5. */
  presenceTtlSeconds?: number;
}

/** A stream's frames with the time each came, and when it ended. */
export class TimedStream {
  readonly arrivals = new Map<string, number>();
  endedAt: number | undefined;
  readonly openedAt = Date.now();

  constructor(readonly raw: RawStream) {
    raw.call.on("data", (frame: ServerFrame) => {
      const m = frame.message;
      if (m !== undefined && !this.arrivals.has(key(m))) this.arrivals.set(key(m), Date.now());
    });
    raw.call.on("status", () => (this.endedAt ??= Date.now()));
  }
}

const key = (m: { conversationId: string; seq: number }) => `${m.conversationId}/${m.seq}`;

/** A reconnecting client with its inbox and a timed log of how its streams ended. */
export interface Watched {
  user: TestUser;
  client: ReconnectingClient;
  inbox: Inbox;
  readies: { at: number; pod: string }[];
  caughtUps: number[];
  drains: number[];
  disconnects: { at: number; code: number; details: string }[];
}

/** A message the test knows was committed, and a time by which it surely was (an ack, or its first sight in history). */
export interface Committed {
  message: Message;
  by: number;
}

export interface Scene {
  pods: ChildServer[];
  env: Env;
  cleanup: Cleanup;
  track<T extends { close(): void }>(closeable: T): T;
  ana: TestUser;
  ben: TestUser;
  rex: TestUser;
  /** ana's unary calls through pod 1. */
  anaApi: ParleyApi;
  toBen: Target;
  /** The DM of ana and ben. */
  dm: string;
  /** ana's reconnecting client on pod 1: the peer whose presence frames are checked. */
  anaW: Watched;
  /** ben's reconnecting client, pod 2 first. */
  benW: Watched;
  /** ben's raw Connect on pod 2, which nothing reconnects. */
  benRaw: TimedStream;
  /** Every send of the test that was acknowledged, with when. */
  acked: Committed[];
  /** Sends through pod 1 as ana, each recorded in `acked`; paced so that two cores keep up. */
  send(body: string, clientMsgId: string, to?: Target): Promise<Message>;
  /** A steady loop of `send`s to ben. */
  loop(name: string): SendLoop;
}

/**
 * Starts two pods on `databaseUrl` and `redisUrl`, signs up ana, ben and rex,
 * makes ana a peer of both (a DM each), and connects: ana's client on pod 1,
 * ben's client on [pod 2, pod 1] and ben's raw stream on pod 2. Resolves once
 * everyone is caught up and ana has seen ben and rex online (rex through a
 * stream of `openRevocationProbe`, which the caller opens: `rexOnline` false
 * skips waiting for rex).
 */
export async function startScene(t: ExecutionContext, options: SceneOptions, cleanup = cleanupsOf(t)): Promise<Scene> {
  // A fault test runs for a minute or two when the contract does not hold; ava's global timeout is 120 s of silence.
  t.timeout(240_000, "fault test");
  const env: Env = {
    DATABASE_URL: options.databaseUrl,
    REDIS_URL: options.redisUrl,
    PRESENCE_TTL_SECONDS: String(options.presenceTtlSeconds ?? 5),
    ...NO_RATE_LIMIT,
    ...options.env,
  };
  const pods = await Promise.all(["pod-1", "pod-2"].map((POD_NAME) => spawnServer({ ...env, POD_NAME })));
  const scenePods = [...pods];
  // stopPod of whichever process holds the name at the end (a test may restart one).
  cleanup(() =>
    Promise.all(
      scenePods.map((pod) => {
        signal(pod.process.pid, "SIGCONT");
        return stopPod(pod, 5_000);
      }),
    ),
  );
  const track = <T extends { close(): void }>(closeable: T): T => {
    cleanup(() => closeable.close());
    return closeable;
  };
  const [p1, p2] = pods;
  const [ana, ben, rex] = await Promise.all(["ana", "ben", "rex"].map((prefix) => newUser(p1.address, prefix)));
  for (const user of [ana, ben, rex]) track(user.api);
  const anaApi = ana.api;
  const toBen: Target = { username: ben.username };
  const acked: Committed[] = [];
  const send = async (body: string, clientMsgId: string, to: Target = toBen) => {
    const message = await anaApi.send(to, body, clientMsgId);
    acked.push({ message, by: Date.now() });
    return message;
  };
  const first = await send("before the fault", "setup-ben");
  await send("you too, rex", "setup-rex", { username: rex.username });

  const anaW = await watch(track, ana, [p1.address]);
  const benW = await watch(track, ben, [p2.address, p1.address]);
  const benRaw = new TimedStream(track(RawStream.connect(p2.address, ben.token).hello()));
  await benRaw.raw.until(() => benRaw.raw.caughtUp, "ben's raw stream caught up", WAIT_MS);
  await anaW.inbox.until(() => lastPresence(anaW, ben.username) === true, "ana sees ben online", WAIT_MS);

  const scene: Scene = {
    pods: scenePods,
    env,
    cleanup,
    track,
    ana,
    ben,
    rex,
    anaApi,
    toBen,
    dm: first.conversationId,
    anaW,
    benW,
    benRaw,
    acked,
    send,
    loop: (name) =>
      new SendLoop(name, async (body, id) => {
        const message = await send(body, id);
        await new Promise((r) => setTimeout(r, 40));
        return message;
      }),
  };
  return scene;
}

/** Starts a reconnecting client for `user` over `addresses` and resolves once it is caught up. */
export async function watch(track: Scene["track"], user: TestUser, addresses: string[]): Promise<Watched> {
  const inbox = inboxFor(user, addresses);
  const client = track(inbox.client);
  const w: Watched = { user, client, inbox, readies: [], caughtUps: [], drains: [], disconnects: [] };
  client.on("ready", (ready) => w.readies.push({ at: Date.now(), pod: ready.pod }));
  client.on("caughtUp", () => w.caughtUps.push(Date.now()));
  client.on("drain", () => w.drains.push(Date.now()));
  client.on("disconnected", ({ code, details }) => w.disconnects.push({ at: Date.now(), code, details }));
  client.start();
  await inbox.until(() => inbox.caughtUp > 0, `${user.username} caught up`, WAIT_MS);
  return w;
}

/** The last presence frame `w` got about `username`: true (online), false, or undefined when none came. */
export function lastPresence(w: Watched, username: string): boolean | undefined {
  return w.inbox.presence.filter((p) => p.username === username).at(-1)?.online;
}

// ---------------------------------------------------------------------------
// Revocation

/**
 * rex's streams that must end with UNAUTHENTICATED once his token is revoked:
 * a Connect that said hello on pod 2, and a Connect that never says hello on
 * each pod (design.md, "Authentication").
 */
export interface RevocationProbe {
  token: string;
  streams: { name: string; pod: ChildServer; stream: TimedStream }[];
}

/** Opens rex's probe streams with `token` (rex is online once it resolves). */
export async function openRevocationProbe(scene: Scene, token = scene.rex.token): Promise<RevocationProbe> {
  const [p1, p2] = scene.pods;
  const helloed = new TimedStream(scene.track(RawStream.connect(p2.address, token).hello()));
  await helloed.raw.until(() => helloed.raw.caughtUp, "rex's stream caught up", WAIT_MS);
  const silent = [p1, p2].map((pod) => ({
    name: `Connect without hello on ${pod.pod}`,
    pod,
    stream: new TimedStream(scene.track(RawStream.connect(pod.address, token))),
  }));
  return { token, streams: [{ name: `Connect after hello on ${p2.pod}`, pod: p2, stream: helloed }, ...silent] };
}

/**
 * LogOut with `token` through `api`, retried while it answers UNAVAILABLE (a
 * dependency down) for up to WAIT_MS; resolves with when the attempt that
 * answered OK was made.
 */
export async function logOut(address: string, token: string): Promise<{ at: number; unavailable: number }> {
  const api = new ParleyApi(address, token);
  let unavailable = 0;
  const deadline = Date.now() + WAIT_MS;
  try {
    for (;;) {
      // The revocation takes effect while LogOut runs (this pod's streams end before it answers): time it from the call.
      const at = Date.now();
      try {
        await api.logOut();
        return { at, unavailable };
      } catch (err) {
        if ((err as ServiceError).code !== status.UNAVAILABLE || Date.now() > deadline) throw err;
        unavailable += 1;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  } finally {
    api.close();
  }
}

/**
 * Asserts that a token revoked at `revokedAt` stopped working: WhoAmI and Send
 * on every pod answer UNAUTHENTICATED within REVOKE_MS and keep doing so, and
 * each probe stream still open when it was revoked ended with UNAUTHENTICATED
 * within REVOKE_MS of `revokedAt` (or of `awakeFrom(pod)`, for a pod that was
 * paused meanwhile). Returns what was observed, for the test's log line.
 */
export async function checkRevoked(
  t: ExecutionContext,
  scene: Scene,
  probe: RevocationProbe,
  revokedAt: number,
  awakeFrom: (pod: ChildServer) => number = () => revokedAt,
  faultEndedAt = revokedAt,
): Promise<string> {
  const notes: string[] = [];
  // Streams first: their clock runs from the revocation, so they are not kept waiting behind the unary polls.
  // A stream the fault itself ended (UNAVAILABLE, so that its client resumes) before the revocation reached it is
  // no longer open; its client's next stream is refused, which the unary and new-Connect checks below cover.
  const endedByFault = (p: RevocationProbe["streams"][number]) =>
    p.stream.endedAt !== undefined && p.stream.raw.status?.code === status.UNAVAILABLE && p.stream.endedAt <= faultEndedAt;
  const open = probe.streams.filter((p) => (p.stream.endedAt === undefined || p.stream.endedAt >= revokedAt) && !endedByFault(p));
  for (const p of probe.streams.filter((x) => !open.includes(x))) {
    notes.push(`${p.name}: had ended ${status[p.stream.raw.status?.code ?? -1]} by the fault`);
    t.is(p.stream.raw.status?.code, status.UNAVAILABLE, `${p.name}: a stream ended by the fault ends UNAVAILABLE`);
  }
  await Promise.all(
    open.map((p) => {
      const deadline = Math.max(revokedAt, awakeFrom(p.pod)) + REVOKE_MS;
      return p.stream.raw
        .until(() => p.stream.raw.status !== undefined, `${p.name} to end`, Math.max(0, deadline - Date.now()) + 250)
        .catch(() => undefined);
    }),
  );
  for (const p of open) {
    const deadline = Math.max(revokedAt, awakeFrom(p.pod)) + REVOKE_MS;
    const s = p.stream.raw.status;
    const endedMs = p.stream.endedAt === undefined ? undefined : p.stream.endedAt - revokedAt;
    notes.push(`${p.name}: ${s === undefined ? "still open" : `${status[s.code]} after ${endedMs} ms`}`);
    t.is(s?.code, status.UNAUTHENTICATED, `${p.name} ends UNAUTHENTICATED once the token is revoked (${JSON.stringify(s)})`);
    if (p.stream.endedAt !== undefined) t.true(p.stream.endedAt <= deadline, `${p.name} ended within ${REVOKE_MS} ms`);
    const ready = p.stream.raw.frames.findIndex((f) => f.ready);
    if (p.name.includes("without hello")) t.is(ready, -1, `${p.name}: no ready frame`);
  }
  // Unary calls on every pod: refused by REVOKE_MS after the revocation, and from then on.
  await Promise.all(
    scene.pods.map(async (pod) => {
      const api = new ParleyApi(pod.address, probe.token, 3_000);
      try {
        const codeOf = async (call: () => Promise<unknown>) => {
          try {
            await call();
            return status.OK;
          } catch (err) {
            return (err as ServiceError).code;
          }
        };
        const deadline = Math.max(revokedAt, awakeFrom(pod)) + REVOKE_MS;
        let whoAmI = await codeOf(() => api.whoAmI());
        while (whoAmI !== status.UNAUTHENTICATED && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 200));
          whoAmI = await codeOf(() => api.whoAmI());
        }
        notes.push(`WhoAmI on ${pod.pod}: ${status[whoAmI]} at ${Date.now() - revokedAt} ms`);
        t.is(whoAmI, status.UNAUTHENTICATED, `WhoAmI on ${pod.pod} with the revoked token`);
        const sendCode = await codeOf(() => api.send({ username: scene.ana.username }, "from a revoked session", uniqueName("rv")));
        t.is(sendCode, status.UNAUTHENTICATED, `Send on ${pod.pod} with the revoked token`);
        const fresh = RawStream.connect(pod.address, probe.token).hello();
        await fresh.until(() => fresh.status !== undefined, `a new Connect on ${pod.pod} to be refused`, 5_000).catch(() => undefined);
        fresh.close();
        t.is(fresh.status?.code, status.UNAUTHENTICATED, `a new Connect on ${pod.pod} with the revoked token`);
        t.false(
          fresh.frames.some((f) => f.ready),
          `a new Connect on ${pod.pod} gets no ready`,
        );
      } finally {
        api.close();
      }
    }),
  );
  return notes.join("; ");
}

// ---------------------------------------------------------------------------
// Delivery

/**
 * Sends every refused send of `loops` again with its client_msg_id (as a
 * client would once things settle) and records each as committed. Asserts
 * that every refusal was UNAVAILABLE, never INTERNAL or anything else.
 */
export async function retryRefused(t: ExecutionContext, scene: Scene, loops: SendLoop[]): Promise<number> {
  const refused = loops.flatMap((l) => l.refused);
  t.deepEqual(
    refused.filter((r) => r.code !== status.UNAVAILABLE).map((r) => `${r.clientMsgId}: ${status[r.code] ?? r.code} ${r.details}`),
    [],
    "a send without an ack is answered UNAVAILABLE (retryable), nothing else",
  );
  for (const r of refused) await scene.send(r.body, r.clientMsgId);
  return refused.length;
}

/**
 * What every fault test ends with, for the DM of ana and ben:
 * - history has no gap and holds each (sender, client_msg_id) once, and every
 *   acknowledged send with the seq and body it was acknowledged with;
 * - ben's reconnecting client got all of it, once each, in order;
 * - ben's raw stream got each message committed after it caught up within
 *   LIVE_MS of the commit, once, in order, or it was ended UNAVAILABLE by then.
 * Returns a summary for the log.
 */
export async function checkDelivery(t: ExecutionContext, scene: Scene, conversationId = scene.dm): Promise<string> {
  const history = await fullHistory(scene.anaApi, conversationId);
  const stored = assertIntact(t, history);
  const mine = scene.acked.filter((a) => a.message.conversationId === conversationId);
  t.deepEqual(
    mine.filter(({ message: m }) => stored.get(m.id)?.seq !== m.seq || stored.get(m.id)?.body !== m.body).map((a) => brief(a.message)),
    [],
    "every acknowledged send is stored as acknowledged",
  );
  // When each message was surely committed: its earliest ack (a retry returns the original).
  const by = new Map<number, number>();
  for (const a of mine) by.set(a.message.seq, Math.min(by.get(a.message.seq) ?? Infinity, a.by));
  t.deepEqual(history.filter((m) => !by.has(m.seq)).map(brief), [], "nothing is stored that no ack returned");

  // The reconnecting client: everything, once, in order.
  const benIn = scene.benW.inbox;
  const got = () => benIn.messages.filter((m) => m.conversationId === conversationId);
  await benIn.until(() => got().some((m) => m.seq === history.length), "ben's client has everything", 15_000).catch(() => undefined);
  t.deepEqual(got().map(brief), history.map(brief), "ben's reconnecting client got every message once, in order");

  // The raw stream: live within LIVE_MS, or ended UNAVAILABLE in time.
  const raw = scene.benRaw;
  const replayedTo = Math.max(
    0,
    ...raw.raw
      .replayed()
      .filter((m) => m.conversationId === conversationId)
      .map((m) => m.seq),
  );
  const due = history.filter((m) => m.seq > replayedTo).map((m) => ({ m, deadline: (by.get(m.seq) ?? Date.now()) + LIVE_MS }));
  const settled = (d: (typeof due)[number]) =>
    raw.arrivals.has(key(d.m)) || (raw.endedAt !== undefined && raw.endedAt <= d.deadline) || Date.now() > d.deadline;
  const lastDeadline = Math.max(0, ...due.map((d) => d.deadline));
  await pollUntil(() => due.every(settled), "ben's raw stream to settle", Math.max(0, lastDeadline - Date.now()) + 500, 50).catch(() => undefined);
  const late = due.filter((d) => {
    const at = raw.arrivals.get(key(d.m));
    if (at !== undefined && at <= d.deadline) return false;
    return !(raw.endedAt !== undefined && raw.endedAt <= d.deadline);
  });
  t.deepEqual(
    late.map(
      (d) =>
        `seq ${d.m.seq}: ${raw.arrivals.has(key(d.m)) ? `came ${(raw.arrivals.get(key(d.m)) as number) - d.deadline + LIVE_MS} ms after its commit` : "never came"}`,
    ),
    [],
    `ben's open raw stream gets each committed message within ${LIVE_MS} ms (stream ${raw.raw.status ? `ended ${status[raw.raw.status.code]}` : "still open"})`,
  );
  if (raw.endedAt !== undefined) t.is(raw.raw.status?.code, status.UNAVAILABLE, "ben's raw stream, if ended, ends UNAVAILABLE");
  const seqs = raw.raw.messages(conversationId).map((m) => m.seq);
  t.deepEqual(seqs, range(seqs[0] ?? 1, (seqs[0] ?? 1) + seqs.length - 1), "ben's raw stream: once each, in order, no gap");

  const lags = due.map((d) => (raw.arrivals.get(key(d.m)) ?? NaN) - (d.deadline - LIVE_MS)).filter((x) => !Number.isNaN(x));
  return (
    `${history.length} messages; ben's raw stream ${raw.raw.status ? `ended ${status[raw.raw.status.code]}` : "open"}, ` +
    `got ${lags.length}/${due.length} live (worst ${lags.length ? Math.max(...lags) : "-"} ms after the ack); ` +
    `ben's client reconnected ${scene.benW.disconnects.length}×`
  );
}

// ---------------------------------------------------------------------------
// Presence

/**
 * Waits, up to `timeoutMs`, until ListOnlineUsers on every pod and the last
 * presence frame ana's client got about each of `usernames` agree; asserts it
 * and returns how long it took (ms). A user of whom ana never got a frame
 * counts as offline to her.
 */
export async function checkPresence(t: ExecutionContext, scene: Scene, usernames: string[], timeoutMs = PRESENCE_MS): Promise<number> {
  const start = Date.now();
  const apis = scene.pods.map((pod) => new ParleyApi(pod.address, scene.ben.token, 3_000));
  let last = "";
  try {
    for (;;) {
      const lists = await Promise.all(apis.map((api) => api.listOnlineUsers().catch((err: ServiceError) => [`error ${err.code}`])));
      const listed = usernames.map((u) => lists.map((l) => l.includes(u)));
      const told = usernames.map((u) => lastPresence(scene.anaW, u) ?? false);
      last = usernames.map((u, i) => `${u}: listed ${JSON.stringify(listed[i])}, ana told ${told[i]}`).join("; ");
      if (listed.every((perPod, i) => perPod.every((x) => x === told[i]))) break;
      if (Date.now() - start > timeoutMs) {
        t.fail(`presence frames and ListOnlineUsers still disagree after ${timeoutMs} ms: ${last}`);
        return Date.now() - start;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    for (const api of apis) api.close();
  }
  t.pass();
  return Date.now() - start;
}

/** What the pods logged at error level or above (pino levels 50, 60). */
export function errorLines(pods: ChildServer[]): string[] {
  return pods.flatMap((pod) => pod.logs.filter((line) => /"level":(5|6)\d/.test(line)).map((line) => `${pod.pod}: ${line.slice(0, 300)}`));
}

export const brief = (m: Message) => ({ seq: m.seq, sender: m.sender, body: m.body });

// ---------------------------------------------------------------------------
// One fault, start to end

export interface Fault {
  /** Breaks something; resolves once it is broken. */
  inject(): Promise<void>;
  /** What a client does at the moment of the fault (a send, a join), concurrently with `inject`'s end. */
  atOnce?(): Promise<unknown>;
  /** How long the fault lasts before `repair`, in ms. Default 0. */
  holdMs?: number;
  /** Ends the fault early when it resolves (before holdMs). */
  holdUntil?(): Promise<unknown>;
  /** Repairs it; resolves once repaired. */
  repair(): Promise<void>;
  /** After the repair and before rex's revocation ("after") or the final checks. */
  afterRepair?(): Promise<unknown>;
  /** When rex's token is revoked: "during" the fault (default) or "after" the repair. */
  revoke?: "during" | "after";
  /** Open rex's probe streams after the repair instead of before the fault (when the fault ends them anyway). */
  probeAfterRepair?: boolean;
  /** When a pod could act again (a paused one: when it was resumed). Default: always. */
  awakeFrom?(pod: ChildServer): number;
  /** Conversations besides ana's DM with ben whose delivery to ben is checked. */
  alsoCheck?(): string[];
}

/** What happened, for the test's own assertions and its log line. */
export interface FaultResult {
  injectedAt: number;
  repairedAt: number;
  revokedAt: number;
  loop: SendLoop;
  notes: string[];
}

/**
 * Runs one fault under traffic and asserts the common contract: ana's steady
 * DMs to ben through pod 1 (UNAVAILABLE or acknowledged; every refusal retried
 * with its id ends stored once), delivery to ben (checkDelivery), rex's
 * revocation (checkRevoked) and presence agreement for ben and rex
 * (checkPresence). The test adds what is particular to its fault.
 */
export async function runFault(t: ExecutionContext, scene: Scene, fault: Fault): Promise<FaultResult> {
  const notes: string[] = [];
  // Logged as they come, so that a test that fails half-way still shows what it observed.
  const note = (line: string) => {
    notes.push(line);
    t.log(line);
  };
  const p1 = scene.pods[0];
  let probe = fault.probeAfterRepair ? undefined : await openRevocationProbe(scene);
  if (probe) await scene.anaW.inbox.until(() => lastPresence(scene.anaW, scene.rex.username) === true, "ana sees rex online", WAIT_MS);
  const loop = scene.loop("ana");
  scene.cleanup(() => loop.stop()); // a test that throws half-way must not leave it sending
  await pollUntil(() => loop.acked.length >= 3, "traffic before the fault", WAIT_MS);

  const injectedAt = Date.now();
  await fault.inject();
  let revokedAt = Number.NaN;
  const during: Promise<unknown>[] = [fault.atOnce?.() ?? Promise.resolve()];
  if ((fault.revoke ?? "during") === "during" && probe) {
    during.push(
      logOut(p1.address, probe.token).then(({ at, unavailable }) => {
        revokedAt = at;
        note(`LogOut during the fault answered OK after ${unavailable} UNAVAILABLE`);
      }),
    );
  }
  // The repair does not wait for what clients do meanwhile: a call may hang until it is repaired.
  const clients = Promise.allSettled(during);
  const hold = new Promise((r) => setTimeout(r, fault.holdMs ?? 0));
  await (fault.holdUntil ? Promise.race([hold, fault.holdUntil()]) : hold);
  await fault.repair();
  const repairedAt = Date.now();
  for (const outcome of await clients) if (outcome.status === "rejected") t.fail(`a call made during the fault failed: ${String(outcome.reason)}`);
  note(`fault lasted ${repairedAt - injectedAt} ms`);
  await fault.afterRepair?.();

  if (probe === undefined) {
    probe = await openRevocationProbe(scene);
    await scene.anaW.inbox.until(() => lastPresence(scene.anaW, scene.rex.username) === true, "ana sees rex online", WAIT_MS);
  }
  if (Number.isNaN(revokedAt)) revokedAt = (await logOut(p1.address, probe.token)).at;

  await pollUntil(() => loop.ackedSince(repairedAt) >= 5, "sends after the repair", WAIT_MS);
  await loop.stop();
  const retried = await retryRefused(t, scene, [loop]);
  note(`${loop.acked.length} sends acked, ${retried} refused and retried`);

  note(`revocation: ${await checkRevoked(t, scene, probe, revokedAt, fault.awakeFrom, repairedAt)}`);
  for (const conversationId of [scene.dm, ...(fault.alsoCheck?.() ?? [])]) note(await checkDelivery(t, scene, conversationId));
  const presenceMs = await checkPresence(t, scene, [scene.ben.username, scene.rex.username]);
  note(`presence agreed ${presenceMs} ms after the checks began (${Date.now() - revokedAt} ms after the revocation)`);
  return { injectedAt, repairedAt, revokedAt, loop, notes };
}

export { spawnServer, stopPod };
