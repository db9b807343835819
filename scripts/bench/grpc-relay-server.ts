// The transport floor (floor.ts): Parley's wire protocol with nothing behind
// it. A grpc-js server that speaks the subset of parley.chat.v1 the
// benchmark's clients use (SignUp, CreateGroup, JoinGroup, Connect with
// hello, send and batch frames), and relays each message the way the peer
// system does: delivered at once to the streams on this process, published
// on Redis for the other relays, which deliver it to theirs. Nothing is
// stored, nothing is sequenced across processes, no session is checked (the
// token is the username), and no stream is bounded or drained: what is left
// is what grpc-js, HTTP/2, protobuf and our client cost. It is a measuring
// instrument, not a server anyone should run.
//
// Each message gets a seq per (conversation, relay) and a conversation id
// naming the relay that numbered it, so the client's de-duplication by seq
// sees an ascending sequence on each id without a round trip to number it.
//
// Environment: REDIS_URL (required; group membership lives there so that any
// relay can serve any user), RELAY_PORT (0 = any free port), RELAY_NAME.
// Prints one line `{"listening":<port>}` once it accepts connections.
import {
  Server,
  ServerCredentials,
  status,
  type Metadata,
  type sendUnaryData,
  type ServerDuplexStream,
  type ServerUnaryCall,
  type UntypedServiceImplementation,
} from "@grpc/grpc-js";
import { AuthServiceService, type SignUpRequest, type SignUpResponse } from "../../gen/parley/auth/v1/auth.js";
import {
  ChatServiceService,
  type ClientFrame,
  type CreateGroupRequest,
  type CreateGroupResponse,
  Message,
  type SendRequest,
} from "../../gen/parley/chat/v1/chat.js";
import { batchFrame, encodeFrame, messageFrameOf, serializeFrame } from "../../services/chat/frames.js";
import { redisPair, stopWith } from "./server-process.js";

const name = process.env.RELAY_NAME ?? "relay";
const { pub: redis, sub } = redisPair(name);

const groupChannel = (group: string) => `relay:g:${group.toLowerCase()}`;
const userChannel = (username: string) => `relay:u:${username.toLowerCase()}`;

/** A Connect stream: what one event-loop turn queued goes out as one write (a `batch` frame when the client accepts it). */
class RelayStream {
  private queue: Buffer[] = [];
  acceptBatch = false;
  groups = new Set<string>();

  constructor(
    readonly username: string,
    private readonly call: ServerDuplexStream<ClientFrame, Buffer>,
  ) {}

  push(frame: Buffer): void {
    if (this.queue.push(frame) === 1) setImmediate(() => this.flush());
  }

  private flush(): void {
    const frames = this.queue;
    this.queue = [];
    if (this.call.destroyed) return;
    if (this.acceptBatch && frames.length > 1) this.call.write(batchFrame(frames));
    else for (const frame of frames) this.call.write(frame);
  }
}

/** Local streams by Redis channel (a group's, or a user's own for DMs). */
const listeners = new Map<string, Set<RelayStream>>();

function listen(channel: string, stream: RelayStream): void {
  let streams = listeners.get(channel);
  if (streams === undefined) {
    streams = new Set();
    listeners.set(channel, streams);
    void sub.subscribe(channel);
  }
  streams.add(stream);
}

const deliverLocally = (channel: string, frame: Buffer) => {
  for (const stream of listeners.get(channel) ?? []) stream.push(frame);
};

// On the bus: the origin relay's name, a NUL, then the encoded Message.
sub.on("messageBuffer", (channel: Buffer, payload: Buffer) => {
  const cut = payload.indexOf(0);
  if (payload.subarray(0, cut).toString() === name) return;
  deliverLocally(channel.toString(), messageFrameOf(payload.subarray(cut + 1)));
});

const seqs = new Map<string, number>();

function relay(stream: RelayStream, send: SendRequest): void {
  const { username } = stream;
  const group = send.to?.group;
  const peer = send.to?.username;
  const fail = (reason: string) => stream.push(encodeFrame({ sendFailed: { clientMsgId: send.clientMsgId, code: status.INVALID_ARGUMENT, reason } }));
  let channels: string[];
  let conversation: string;
  if (group !== undefined) {
    if (!stream.groups.has(group.toLowerCase())) {
      fail("not a member");
      return;
    }
    channels = [groupChannel(group)];
    conversation = `g:${group.toLowerCase()}`;
  } else if (peer !== undefined) {
    channels = [...new Set([userChannel(peer), userChannel(username)])];
    conversation = `d:${[peer.toLowerCase(), username.toLowerCase()].sort().join(":")}`;
  } else {
    fail("bad target");
    return;
  }
  const conversationId = `${conversation}@${name}`;
  const seq = (seqs.get(conversationId) ?? 0) + 1;
  seqs.set(conversationId, seq);
  const message: Message = {
    id: `${name}-${conversationId}-${seq}`,
    conversationId,
    seq,
    sender: username,
    to: send.to,
    body: send.body,
    sentAt: new Date(),
    clientMsgId: send.clientMsgId,
  };
  const bytes = Message.encode(message).finish();
  const frame = messageFrameOf(bytes);
  for (const channel of channels) {
    deliverLocally(channel, frame);
    void redis.publish(channel, Buffer.concat([Buffer.from(`${name}\0`), bytes]));
  }
  stream.push(encodeFrame({ sent: { clientMsgId: send.clientMsgId, message } }));
}

/** The bearer token is the username. */
function userOf(metadata: Metadata): string | undefined {
  const header = metadata.get("authorization")[0];
  return typeof header === "string" && header.startsWith("Bearer ") ? header.slice("Bearer ".length) : undefined;
}

const user = (username: string) => ({ id: username, username });

const auth: UntypedServiceImplementation = {
  signUp(call: ServerUnaryCall<SignUpRequest, SignUpResponse>, callback: sendUnaryData<SignUpResponse>) {
    const { username } = call.request;
    callback(null, { token: username, user: user(username), expiresAt: undefined });
  },
};

async function membership(call: ServerUnaryCall<CreateGroupRequest, CreateGroupResponse>, callback: sendUnaryData<CreateGroupResponse>) {
  const username = userOf(call.metadata);
  if (username === undefined) return callback({ code: status.UNAUTHENTICATED, details: "no token" });
  const group = call.request.name.toLowerCase();
  await redis.multi().sadd(`relay:members:${group}`, username).sadd(`relay:groups:${username.toLowerCase()}`, group).exec();
  const members = await redis.scard(`relay:members:${group}`);
  callback(null, { group: { name: call.request.name, memberCount: members, conversationId: `g:${group}`, isMember: true, createdAt: undefined } });
}

const chat: UntypedServiceImplementation = {
  createGroup: membership,
  joinGroup: membership,
  connect(call: ServerDuplexStream<ClientFrame, Buffer>) {
    const username = userOf(call.metadata);
    if (username === undefined) {
      call.emit("error", { code: status.UNAUTHENTICATED, details: "no token" });
      return;
    }
    const stream = new RelayStream(username, call);
    call.on("data", (frame: ClientFrame) => {
      if (frame.hello) {
        stream.acceptBatch = frame.hello.acceptBatch;
        void redis.smembers(`relay:groups:${username.toLowerCase()}`).then((groups) => {
          for (const group of groups) {
            stream.groups.add(group);
            listen(groupChannel(group), stream);
          }
          listen(userChannel(username), stream);
          stream.push(encodeFrame({ ready: { user: user(username), pod: name } }));
          stream.push(encodeFrame({ caughtUp: {} }));
        });
      } else if (frame.send) relay(stream, frame.send);
    });
    const forget = () => {
      for (const streams of listeners.values()) streams.delete(stream);
    };
    call.on("end", () => {
      forget();
      call.end();
    });
    call.on("cancelled", forget);
    call.on("error", forget);
  },
};

const server = new Server();
server.addService(AuthServiceService, auth);
server.addService({ ...ChatServiceService, connect: { ...ChatServiceService.connect, responseSerialize: serializeFrame } }, chat);
server.bindAsync(`127.0.0.1:${Number(process.env.RELAY_PORT ?? 0)}`, ServerCredentials.createInsecure(), (err, port) => {
  if (err) {
    process.stderr.write(`${name}: ${err.message}\n`);
    process.exit(1);
  }
  process.stdout.write(`${JSON.stringify({ listening: port, name })}\n`);
});

stopWith(() => {
  server.forceShutdown();
  redis.disconnect();
  sub.disconnect();
  process.exit(0);
});
