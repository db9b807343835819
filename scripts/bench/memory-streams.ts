// A load-generator process of the memory scenario (scripts/bench/memory.ts):
// it holds idle connections open on one server, and answers its parent over
// the IPC channel. Parley: Connect streams, each on an HTTP/2 connection of its
// own, or (`shared`) all of this process's on one, as behind Envoy; Socket.IO:
// sockets (WebSocket transport, no shared Manager).
//   { open: { system, address, tokens, count, from, shared } } → opens `count` more,
//     stream i's credential (Parley: a token; Socket.IO: a username) being
//     tokens[(from + i) % tokens.length], and replies
//     { opened: { live, failed, firstError } } once each is caught up or refused;
//   { close: true } → closes every stream and exits.
// Spreading the streams over several such processes keeps the load generator
// from being the limit (each client costs it a channel, a socket and timers).
import { io, type Socket } from "socket.io-client";
import { ReconnectingClient } from "../../services/client/reconnecting-client.js";
import type { SystemName } from "./workload.js";

export interface OpenRequest {
  system: SystemName;
  address: string;
  tokens: string[];
  count: number;
  from: number;
  /** Parley: this process's streams share one HTTP/2 connection instead of one each. */
  shared: boolean;
}
export type WorkerRequest = { open: OpenRequest } | { close: true };
export type WorkerReply = { opened: { live: number; failed: number; firstError?: string } };

/** Streams being opened at once: each needs a TCP handshake, an HTTP/2 preface and a session lookup. */
const OPEN_CONCURRENCY = 64;
const LIVE_TIMEOUT_MS = 60_000;

const clients: { close(): void }[] = [];

/** Opens one stream and resolves once it is caught up (true) or refused or too slow (false, with why). */
function openOne(address: string, token: string, shared: boolean): Promise<true | string> {
  const client = new ReconnectingClient({
    address,
    token,
    // Its own subchannel pool, so its own connection; grpc-js's global pool shares one among channels to the same address.
    channelOptions: { "grpc.use_local_subchannel_pool": shared ? 0 : 1 },
    backoff: { initialMs: 500, maxMs: 5_000 },
  });
  clients.push(client);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(`not live within ${LIVE_TIMEOUT_MS} ms`), LIVE_TIMEOUT_MS);
    client.once("caughtUp", () => {
      clearTimeout(timer);
      resolve(true);
    });
    client.on("disconnected", ({ willRetry, code, details }) => {
      if (willRetry) return;
      clearTimeout(timer);
      resolve(`refused (${code}): ${details}`);
    });
    client.start();
  });
}

/** Opens one Socket.IO socket and resolves once it is connected (true) or refused (why). */
function openSocket(address: string, username: string): Promise<true | string> {
  const socket: Socket = io(`http://${address}`, { transports: ["websocket"], forceNew: true, reconnection: false, auth: { username } });
  clients.push(socket);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(`not connected within ${LIVE_TIMEOUT_MS} ms`), LIVE_TIMEOUT_MS);
    socket.once("connect", () => {
      clearTimeout(timer);
      resolve(true);
    });
    socket.once("connect_error", (err) => {
      clearTimeout(timer);
      resolve(`refused: ${err.message}`);
    });
  });
}

async function open({ system, address, tokens, count, from, shared }: OpenRequest): Promise<WorkerReply> {
  let next = 0;
  let live = 0;
  let failed = 0;
  let firstError: string | undefined;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      const credential = tokens[(from + i) % tokens.length];
      const outcome = await (system === "parley" ? openOne(address, credential, shared) : openSocket(address, credential));
      if (outcome === true) live += 1;
      else {
        failed += 1;
        firstError ??= outcome;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(OPEN_CONCURRENCY, count) }, worker));
  return { opened: { live, failed, firstError } };
}

process.on("message", (message: WorkerRequest) => {
  if ("open" in message) {
    void open(message.open).then((reply) => process.send?.(reply));
  } else {
    for (const client of clients) client.close();
    process.exit(0);
  }
});
// The parent went away: nothing should outlive the benchmark.
process.on("disconnect", () => process.exit(0));
