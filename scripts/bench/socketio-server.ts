// The peer system: a chat relay written the way Socket.IO's docs recommend
// for several servers: a socket.io Server with @socket.io/redis-adapter over
// an ioredis pub client and its duplicate() as the sub client, on the same
// Redis as Parley. Groups are rooms; every user is also in a room of their
// own (for DMs); "send" is acknowledged through the ack callback once the
// server has emitted "message" to the room. Nothing is persisted: that is the
// trade-off the benchmark's report names.
//
// Environment: REDIS_URL (required), SIO_PORT (0 = any free port), SIO_NAME.
// Prints one line `{"listening":<port>}` once it accepts connections.
import { createServer } from "node:http";
import { createAdapter } from "@socket.io/redis-adapter";
import { Server, type Socket } from "socket.io";
import { MAX_BODY_BYTES, NAME_PATTERN } from "../../services/lib/contract.js";
import { redisPair, stopWith } from "./server-process.js";

interface Target {
  group?: string;
  username?: string;
}

interface SendPayload {
  clientMsgId: string;
  to: Target;
  body: string;
}

type Ack = (reply: { ok: true; sentAt: number } | { ok: false; reason: string }) => void;

const name = process.env.SIO_NAME ?? "sio";
const { pub: pubClient, sub: subClient } = redisPair(name);

const httpServer = createServer();
const io = new Server(httpServer, { adapter: createAdapter(pubClient, subClient), serveClient: false });

const userRoom = (username: string) => `user:${username.toLowerCase()}`;
const groupRoom = (group: string) => `group:${group.toLowerCase()}`;

io.use((socket, next) => {
  const username = (socket.handshake.auth as { username?: unknown }).username;
  if (typeof username !== "string" || !NAME_PATTERN.test(username)) return next(new Error("auth: a valid username is required"));
  socket.data.username = username;
  next();
});

io.on("connection", (socket: Socket) => {
  const username = socket.data.username as string;
  void socket.join(userRoom(username));

  socket.on("join", (group: unknown, ack?: Ack) => {
    if (typeof group !== "string" || !NAME_PATTERN.test(group)) return ack?.({ ok: false, reason: "bad group name" });
    void socket.join(groupRoom(group));
    ack?.({ ok: true, sentAt: Date.now() });
  });

  socket.on("send", (payload: SendPayload, ack?: Ack) => {
    const { to, body, clientMsgId } = payload ?? ({} as SendPayload);
    if (typeof body !== "string" || body.trim() === "" || Buffer.byteLength(body) > MAX_BODY_BYTES) {
      return ack?.({ ok: false, reason: "bad body" });
    }
    let rooms: string[];
    if (typeof to?.group === "string" && NAME_PATTERN.test(to.group)) {
      // Like Parley, only members may post to a group.
      if (!socket.rooms.has(groupRoom(to.group))) return ack?.({ ok: false, reason: "not a member" });
      rooms = [groupRoom(to.group)];
    } else if (typeof to?.username === "string" && NAME_PATTERN.test(to.username)) {
      // Both sides of a DM, as Parley delivers a DM to the sender's other streams too.
      rooms = [userRoom(to.username), userRoom(username)];
    } else {
      return ack?.({ ok: false, reason: "bad target" });
    }
    const sentAt = Date.now();
    io.to(rooms).emit("message", { sender: username, to, body, clientMsgId, sentAt });
    ack?.({ ok: true, sentAt });
  });
});

httpServer.listen(Number(process.env.SIO_PORT ?? 0), "127.0.0.1", () => {
  const address = httpServer.address();
  const port = typeof address === "object" && address ? address.port : 0;
  process.stdout.write(`${JSON.stringify({ listening: port, name })}\n`);
});

stopWith(() => {
  // io.close() disconnects every socket and closes the HTTP server.
  io.close(() => {
    pubClient.disconnect();
    subClient.disconnect();
    process.exit(0);
  });
  setTimeout(() => process.exit(0), 5_000).unref();
});
