// The fault suite's shared scene (design.md, "Delivery guarantees" 3–5 and
// "Authentication"): two pods as child processes on a real Postgres and Redis,
// ana sending DMs to ben through pod 1 while ben listens on pod 2, and rex,
// whose token is revoked during or after the fault; plus the bounds the
// checks hold the clients to.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import type { ExecutionContext } from "ava";
import type { Message, ServerFrame, Target } from "../../gen/parley/chat/v1/chat.js";
import type { ParleyApi } from "../../services/client/api.js";
import type { ReconnectingClient } from "../../services/client/reconnecting-client.js";
import { inboxFor, newUser, type Inbox, type TestUser } from "./clients.js";
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

/** A message's identity: conversation and seq. */
export const key = (m: { conversationId: string; seq: number }) => `${m.conversationId}/${m.seq}`;

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
