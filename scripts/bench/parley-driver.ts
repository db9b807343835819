// Parley as the workload drives it: one ReconnectingClient per virtual user,
// each on an HTTP/2 connection of its own, resuming from the cursors of its
// previous connection so that a new round does not replay the last one.
import { status } from "@grpc/grpc-js";
import type { Cursor } from "../../gen/parley/chat/v1/chat.js";
import { ParleyApi } from "../../services/client/api.js";
import { ReconnectingClient } from "../../services/client/reconnecting-client.js";
import type { Driver, Endpoint, Population, StreamEvents, Target } from "./workload.js";

const PASSWORD = "bench-password";
const CONNECT_TIMEOUT_MS = 60_000;
/** Sign-ups cost a scrypt hash each on the pods: a few at a time. */
const SETUP_CONCURRENCY = 8;

export class ParleyDriver implements Driver {
  readonly system = "parley" as const;
  private population: Population | undefined;
  private tokens: string[] = [];
  private readonly cursors = new Map<number, Cursor[]>();
  private readonly clients = new Map<number, ReconnectingClient>();
  private messageHandler: (receiver: number, body: string) => void = () => undefined;
  private resumedHandler: (user: number, endpoint: string) => void = () => undefined;
  private readonly events: StreamEvents = { reconnects: 0, endedSlow: 0 };

  /** `setupAddresses` take the sign-ups and group creation, spread across them. */
  constructor(private readonly setupAddresses: string[]) {}

  async prepare(population: Population): Promise<void> {
    this.population = population;
    const addressOf = (i: number) => this.setupAddresses[i % this.setupAddresses.length];
    const asUser = async <R>(user: number, call: (api: ParleyApi) => Promise<R>): Promise<R> => {
      const api = new ParleyApi(addressOf(user), this.tokens[user]);
      try {
        return await call(api);
      } finally {
        api.close();
      }
    };
    this.tokens = await mapLimit(population.names, SETUP_CONCURRENCY, async (name, i) =>
      asUser(i, async (api) => (await api.signUp(name, PASSWORD)).token),
    );
    const groups = [...population.groups, population.resumeGroup].filter((g) => g.members.length > 1);
    await mapLimit(groups, SETUP_CONCURRENCY, async (group) => {
      await asUser(group.members[0], (api) => api.createGroup(group.name));
      for (const member of group.members.slice(1)) await asUser(member, (api) => api.joinGroup(group.name));
    });
  }

  async connect(users: number[], route: (user: number) => Endpoint[]): Promise<void> {
    if (!this.population) throw new Error("prepare() first");
    const live = users.map((user) => {
      const client = new ReconnectingClient({
        address: route(user).map((e) => e.address),
        token: this.tokens[user],
        cursors: this.cursors.get(user),
        backoff: { initialMs: 100, maxMs: 2_000 },
        channelOptions: { "grpc.use_local_subchannel_pool": 1 },
      });
      this.clients.set(user, client);
      let pod = "";
      let caughtUp = 0;
      client.on("ready", (ready) => (pod = ready.pod));
      client.on("message", (message) => this.messageHandler(user, message.body));
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`parley user ${user} not live within ${CONNECT_TIMEOUT_MS} ms`)), CONNECT_TIMEOUT_MS);
        client.on("caughtUp", () => {
          caughtUp += 1;
          if (caughtUp === 1) {
            clearTimeout(timer);
            resolve();
          } else {
            this.resumedHandler(user, pod);
          }
        });
        client.on("disconnected", ({ willRetry, code, details }) => {
          if (willRetry) this.events.reconnects += 1;
          // The server's queue limit for a stream that does not keep up (chat-stream's tooSlow).
          if (code === status.RESOURCE_EXHAUSTED && details.includes("too slow")) this.events.endedSlow += 1;
          if (!willRetry) {
            clearTimeout(timer);
            reject(new Error(`parley user ${user} refused (${code}): ${details}`));
          }
        });
        client.start();
      });
    });
    await Promise.all(live);
  }

  async send(from: number, to: Target, body: string, clientMsgId: string): Promise<void> {
    const client = this.clients.get(from);
    if (!client) throw new Error(`user ${from} is not connected`);
    await client.send(to, body, clientMsgId);
  }

  onMessage(handler: (receiver: number, body: string) => void): void {
    this.messageHandler = handler;
  }

  onResumed(handler: (user: number, endpoint: string) => void): void {
    this.resumedHandler = handler;
  }

  streamEvents(): StreamEvents {
    return { ...this.events };
  }

  async disconnect(): Promise<void> {
    for (const [user, client] of this.clients) {
      this.cursors.set(user, client.getCursors());
      client.removeAllListeners();
      client.close();
    }
    this.clients.clear();
  }
}

/** Runs `fn` over `items` with at most `limit` at a time; results in order. */
export async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
