import { readFileSync } from "node:fs";
import { Redis } from "ioredis";
import { isUnavailable, markDependencyFailure } from "./app-error.js";
import type { Logger } from "./logger.js";

/**
 * A Redis connection that fails fast while Redis is unreachable instead of
 * queueing commands in memory: a send must still commit and be acknowledged
 * when Redis is down, so a publish may fail but must never hang. It
 * reconnects by itself, with capped backoff.
 */
export function createRedis(
  url: string,
  name: string,
  log: Logger,
  options: { autoResubscribe?: boolean; autoPipelining?: boolean; onFailure?: () => void } = {},
): Redis {
  const redis = new Redis(url, {
    autoResubscribe: options.autoResubscribe ?? true,
    connectionName: `parley-${name}`,
    enableOfflineQueue: false,
    // A command is never replayed after a reconnect: presence counters must not be applied twice.
    maxRetriesPerRequest: 0,
    connectTimeout: 2_000,
    commandTimeout: 2_000,
    retryStrategy: (attempt) => Math.min(50 * 2 ** attempt, 1_000),
    lazyConnect: true,
    // Commands issued in the same tick (the PUBLISHes of a burst of sends) go out in one write.
    enableAutoPipelining: options.autoPipelining ?? false,
  });
  markFailures(redis, options.onFailure);
  let up = false;
  redis.on("ready", () => {
    if (!up) log.info({ connection: name }, "Redis connected");
    up = true;
  });
  redis.on("close", () => {
    if (up) log.warn({ connection: name }, "Redis connection lost; reconnecting");
    up = false;
  });
  // Errors are reported by the commands that fail; this only keeps them from crashing the process.
  redis.on("error", (err: Error) => log.debug({ err, connection: name }, "Redis error"));
  return redis;
}

/**
 * Marks what every command on `redis` fails with (markDependencyFailure):
 * ioredis names a closed or timed-out connection, and an error reply, only in
 * the message text, and lib/errors.ts tells outages apart by code. Every
 * command, pipelined or not, passes through `sendCommand`; its `reject` is
 * wrapped the way ioredis wraps it itself (Script.js). `onFailure` hears of
 * each failure that is Redis' (isRedisOutage), for the metrics.
 */
function markFailures(redis: Redis, onFailure: (() => void) | undefined): void {
  const send = redis.sendCommand.bind(redis);
  redis.sendCommand = (command, ...rest) => {
    const reject = command.reject;
    command.reject = (err: Error) => {
      const marked = markDependencyFailure(err) as Error;
      if (onFailure !== undefined && isUnavailable(marked) && isRedisOutage(marked)) onFailure();
      reject(marked);
    };
    return send(command, ...rest);
  };
}

/**
 * The error prefixes with which a reachable Redis says that it cannot serve
 * (out of memory, a read-only replica, loading its data, busy with a script,
 * no master, cannot persist). RESP: "the first word after the -, up to the
 * first space or newline, represents the kind of error returned"
 * (https://redis.io/docs/latest/develop/reference/protocol-spec/#simple-errors).
 */
const OUTAGE_REPLIES = new Set(["OOM", "READONLY", "LOADING", "BUSY", "MASTERDOWN", "MISCONF", "NOREPLICAS", "CLUSTERDOWN", "TRYAGAIN"]);

/**
 * Whether a failed command counts against Redis' health (the metrics): no
 * answer at all (a closed or timed-out connection), or an error reply of
 * OUTAGE_REPLIES. Other error replies are answers: ioredis' own probes
 * (CLIENT SETINFO on an older Redis, NOSCRIPT before it sends a script) and
 * our mistakes.
 */
function isRedisOutage(err: Error): boolean {
  if (err.name !== "ReplyError") return true;
  return OUTAGE_REPLIES.has(err.message.split(/\s/, 1)[0]);
}

/** Waits until the connection is ready, up to `timeoutMs`: pods may start before Redis does. */
export async function connectRedis(redis: Redis, timeoutMs = 30_000): Promise<void> {
  // A failed first attempt rejects here, but the retry strategy keeps trying in the background.
  if (redis.status === "wait") redis.connect().catch(() => undefined);
  const deadline = Date.now() + timeoutMs;
  while (redis.status !== "ready") {
    if (Date.now() > deadline) throw new Error(`Redis not reachable within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export type RedisScript = (keys: string[], args: (string | number)[]) => Promise<unknown>;

/**
 * Loads a Lua script from a .lua file as a command on `redis` (EVALSHA, with
 * EVAL when the server has not seen it yet, e.g. after a restart).
 */
export function loadScript(redis: Redis, file: URL, numberOfKeys: number): RedisScript {
  const name = `parley_${file.pathname.split("/").pop()?.replace(/\W/g, "_")}`;
  redis.defineCommand(name, { numberOfKeys, lua: readFileSync(file, "utf8") });
  const command = (redis as unknown as Record<string, (...args: (string | number)[]) => Promise<unknown>>)[name].bind(redis);
  return (keys, args) => command(...keys, ...args);
}
