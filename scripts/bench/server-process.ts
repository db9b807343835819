// What the benchmark's peer servers (socketio-server.ts, grpc-relay-server.ts)
// share as processes: a publisher and a subscriber Redis connection, and a
// shutdown on SIGTERM, SIGINT or the benchmark's death.
import { Redis } from "ioredis";

/**
 * The publisher and subscriber connections to REDIS_URL (exits with code 2
 * when it is not set). Errors are written to stderr under `name`; ioredis
 * reconnects by itself.
 */
export function redisPair(name: string): { pub: Redis; sub: Redis } {
  const url = process.env.REDIS_URL;
  if (!url) {
    process.stderr.write(`${name}: REDIS_URL is required\n`);
    process.exit(2);
  }
  const pub = new Redis(url);
  const sub = pub.duplicate();
  for (const client of [pub, sub]) client.on("error", (err) => process.stderr.write(`${name}: redis ${err.message}\n`));
  return { pub, sub };
}

/**
 * Runs `shutdown` once, on SIGTERM or SIGINT, or when the benchmark that
 * started this process is gone (we were reparented), checked every second:
 * a server must never outlive the benchmark.
 */
export function stopWith(shutdown: () => void): void {
  let closing = false;
  const once = () => {
    if (closing) return;
    closing = true;
    shutdown();
  };
  process.once("SIGTERM", once);
  process.once("SIGINT", once);
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) once();
  }, 1_000).unref();
}
