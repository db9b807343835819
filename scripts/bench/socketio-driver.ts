// Socket.IO as the workload drives it: one socket.io-client per virtual user
// (websocket transport only, forceNew so that none share a Manager or a
// connection), joined to its groups' rooms after each connect, since
// Socket.IO rooms live only as long as the socket.
//
// Socket.IO has no resume: the client's own reconnection retries the same
// URL. To give it the same failover as Parley's address list (what a load
// balancer in front of several servers would do), a lost connection moves on
// to the next endpoint here and joins its rooms again; whatever was sent
// meanwhile is gone (the Redis adapter does not support connection state
// recovery, and nothing is stored).
import { io, type Socket } from "socket.io-client";
import type { Driver, Endpoint, Population, StreamEvents, Target } from "./workload.js";

const CONNECT_TIMEOUT_MS = 60_000;

interface Reply {
  ok: boolean;
  reason?: string;
}

export class SocketIoDriver implements Driver {
  readonly system = "socketio" as const;
  private population: Population | undefined;
  private groupsOf = new Map<number, string[]>();
  private readonly sockets = new Map<number, Socket>();
  private closed = false;
  private messageHandler: (receiver: number, body: string) => void = () => undefined;
  private resumedHandler: (user: number, endpoint: string) => void = () => undefined;
  private readonly events: StreamEvents = { reconnects: 0, endedSlow: 0 };

  async prepare(population: Population): Promise<void> {
    this.population = population;
    this.groupsOf = new Map();
    for (const group of [...population.groups, population.resumeGroup]) {
      if (group.members.length < 2) continue;
      for (const member of group.members) this.groupsOf.set(member, [...(this.groupsOf.get(member) ?? []), group.name]);
    }
  }

  async connect(users: number[], route: (user: number) => Endpoint[]): Promise<void> {
    if (!this.population) throw new Error("prepare() first");
    this.closed = false;
    await Promise.all(
      users.map(
        (user) =>
          new Promise<void>((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error(`socket.io user ${user} not live within ${CONNECT_TIMEOUT_MS} ms`)), CONNECT_TIMEOUT_MS);
            let first = true;
            this.open(user, route(user), 0, (endpoint) => {
              if (first) {
                first = false;
                clearTimeout(timer);
                resolve();
              } else {
                this.resumedHandler(user, endpoint);
              }
            });
          }),
      ),
    );
  }

  private open(user: number, endpoints: Endpoint[], index: number, live: (endpoint: string) => void): void {
    if (this.closed) return;
    const endpoint = endpoints[index % endpoints.length];
    const socket = io(`http://${endpoint.address}`, {
      transports: ["websocket"],
      forceNew: true,
      reconnection: false,
      auth: { username: this.population?.names[user] },
    });
    this.sockets.set(user, socket);
    socket.on("message", (message: { body: string }) => this.messageHandler(user, message.body));
    socket.on("connect", () => {
      const groups = this.groupsOf.get(user) ?? [];
      Promise.all(groups.map((group) => socket.emitWithAck("join", group) as Promise<Reply>))
        .then(() => live(endpoint.name))
        .catch(() => socket.disconnect());
    });
    const failover = () => {
      if (!this.closed && this.sockets.get(user) === socket) this.events.reconnects += 1;
      socket.removeAllListeners();
      socket.disconnect();
      if (this.closed || this.sockets.get(user) !== socket) return;
      // A little jitter, as Parley's client has, so that clients do not land all at once.
      setTimeout(() => this.open(user, endpoints, index + 1, live), Math.random() * 100);
    };
    socket.on("disconnect", (reason) => {
      if (reason !== "io client disconnect") failover();
    });
    socket.on("connect_error", failover);
  }

  send(from: number, to: Target, body: string, clientMsgId: string): Promise<void> {
    const socket = this.sockets.get(from);
    if (!socket) return Promise.reject(new Error(`user ${from} is not connected`));
    return new Promise((resolve, reject) =>
      socket.emit("send", { clientMsgId, to, body }, (reply: Reply) => (reply?.ok ? resolve() : reject(new Error(reply?.reason ?? "refused")))),
    );
  }

  onMessage(handler: (receiver: number, body: string) => void): void {
    this.messageHandler = handler;
  }

  onResumed(handler: (user: number, endpoint: string) => void): void {
    this.resumedHandler = handler;
  }

  /** Socket.IO never ends a connection for reading slowly (it buffers without bound), so `endedSlow` stays 0. */
  streamEvents(): StreamEvents {
    return { ...this.events };
  }

  async disconnect(): Promise<void> {
    this.closed = true;
    for (const socket of this.sockets.values()) {
      socket.removeAllListeners();
      socket.disconnect();
    }
    this.sockets.clear();
  }
}
