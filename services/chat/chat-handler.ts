import type { Metadata, ServerDuplexStream, ServerWritableStream } from "@grpc/grpc-js";
import {
  ChatServiceService,
  type ChatServiceServer,
  type ClientFrame,
  type Cursor,
  type Group,
  type ServerFrame,
  type SubscribeRequest,
} from "../../gen/parley/chat/v1/chat.js";
import type { SessionStore } from "../auth/sessions.js";
import { AppError, toServiceError, toStatus, type ErrorKind } from "../lib/errors.js";
import { bearerToken, isMalformed, tolerantRequests, unary } from "../lib/grpc-calls.js";
import type { Logger } from "../lib/logger.js";
import type { ChatService } from "./chat-service.js";
import type { ChatStream, FrameSink } from "./chat-stream.js";
import { encodeFrame, KIND, toMessage } from "./frames.js";
import type { GroupView } from "./group-store.js";
import type { Streams } from "./streams.js";

/** A Subscribe stream gets an unsolicited `pong{nonce:"heartbeat"}` this often: below Envoy's 300 s stream idle timeout. */
const SUBSCRIBE_HEARTBEAT_MS = 60_000;
const HEARTBEAT = encodeFrame({ pong: { nonce: "heartbeat" } });

/** Sends of one stream committing at once, at most. */
const MAX_UNACKED_SENDS = 256;

/** Client frames waiting to be handled before we stop reading from the socket. */
const MAX_PENDING_FRAMES = 64;

/**
 * ChatService's definition with two transport tweaks: server frames may be
 * pre-encoded bytes (encoded once per fan-out), and a malformed request never
 * throws inside grpc-js (which would end the stream).
 */
export const chatServiceDefinition = tolerantRequests({
  ...ChatServiceService,
  connect: { ...ChatServiceService.connect, responseSerialize: serializeFrame },
  subscribe: { ...ChatServiceService.subscribe, responseSerialize: serializeFrame },
});

function serializeFrame(value: ServerFrame | Buffer): Buffer {
  return Buffer.isBuffer(value) ? value : encodeFrame(value);
}

const toGroup = (g: GroupView): Group => ({
  name: g.name,
  memberCount: g.memberCount,
  conversationId: g.conversationId,
  isMember: g.isMember,
  createdAt: g.createdAt,
});

const toCursorMap = (cursors: Cursor[] | undefined) =>
  new Map((cursors ?? []).filter((c) => c.conversationId).map((c) => [c.conversationId, Math.max(0, c.seq)]));

export interface ChatHandlerDeps {
  chat: ChatService;
  sessions: SessionStore;
  streams: Streams;
  log: Logger;
}

/** gRPC transport for ChatService: authenticate, decode, call the domain, encode. */
export function createChatHandler({ chat, sessions, streams, log }: ChatHandlerDeps): ChatServiceServer {
  const handlerLog = log.child({ component: "chat-handler" });
  const caller = async (call: { metadata: Metadata }) => {
    const session = await sessions.verify(bearerToken(call.metadata));
    return { id: session.userId, username: session.username };
  };

  return {
    connect: (call) => connect(call, sessions, streams, chat, handlerLog),
    subscribe: (call) => subscribe(call, sessions, streams, handlerLog),

    send: unary(handlerLog, "Send", async (req, call) => ({
      message: toMessage(await chat.send(await caller(call), { clientMsgId: req.clientMsgId, to: req.to, body: req.body })),
    })),
    getHistory: unary(handlerLog, "GetHistory", async (req, call) => {
      const page = await chat.history(await caller(call), req.conversationId, req.beforeSeq, req.limit);
      return { messages: page.records.map(toMessage), hasMore: page.hasMore };
    }),
    listConversations: unary(handlerLog, "ListConversations", async (_req, call) => ({
      conversations: (await chat.conversations(await caller(call))).map((c) => ({ ...c, kind: KIND[c.kind] })),
    })),
    markRead: unary(handlerLog, "MarkRead", async (req, call) => ({
      lastReadSeq: await chat.markRead(await caller(call), req.conversationId, req.seq),
    })),
    createGroup: unary(handlerLog, "CreateGroup", async (req, call) => ({
      group: toGroup(await chat.createGroup(await caller(call), req.name)),
    })),
    joinGroup: unary(handlerLog, "JoinGroup", async (req, call) => ({
      group: toGroup(await chat.joinGroup(await caller(call), req.name)),
    })),
    leaveGroup: unary(handlerLog, "LeaveGroup", async (req, call) => ({
      group: toGroup(await chat.leaveGroup(await caller(call), req.name)),
    })),
    listGroups: unary(handlerLog, "ListGroups", async (req, call) => ({
      groups: (await chat.listGroups(await caller(call), req.query, req.mine)).map(toGroup),
    })),
    listOnlineUsers: unary(handlerLog, "ListOnlineUsers", async (_req, call) => {
      await caller(call);
      return { usernames: await chat.onlineUsers() };
    }),
  } satisfies ChatServiceServer;
}

/** Adapts a grpc-js server stream to the hub's FrameSink; `fail` ends it with a mapped status. */
function sinkOf(
  call: ServerWritableStream<unknown, ServerFrame> | ServerDuplexStream<unknown, ServerFrame>,
  log: Logger,
): FrameSink & { fail(err: unknown): void } {
  const writable = call as unknown as NodeJS.WritableStream & NodeJS.EventEmitter;
  let ended = false;
  const fail = (err: unknown) => {
    if (ended) return;
    ended = true;
    if (!call.cancelled) writable.emit("error", toServiceError(err, log));
  };
  return {
    write: (frame) => !ended && writable.write(frame),
    onDrain: (callback) => void writable.once("drain", callback),
    end: (kind?: ErrorKind, reason?: string) => {
      if (kind !== undefined) return fail(new AppError(kind, reason ?? kind));
      if (ended) return;
      ended = true;
      if (!call.cancelled) call.end();
    },
    fail,
    onClose: (callback) => {
      call.once("cancelled", callback);
      call.once("close", callback);
    },
  };
}

function subscribe(
  call: ServerWritableStream<SubscribeRequest, ServerFrame>,
  sessions: SessionStore,
  streams: Streams,
  log: Logger,
): void {
  const methodLog = log.child({ method: "Subscribe" });
  const sink = sinkOf(call, methodLog);
  const request = call.request as unknown;
  (async () => {
    if (isMalformed(request)) throw new AppError("invalid_argument", `malformed request: ${request.malformed}`);
    const session = await sessions.verify(bearerToken(call.metadata));
    const stream = await streams.open(session, sink, toCursorMap(call.request.cursors));
    // Subscribe clients cannot ping, so the server keeps the stream from looking idle to proxies.
    const heartbeat = setInterval(() => stream.send(HEARTBEAT), SUBSCRIBE_HEARTBEAT_MS);
    heartbeat.unref();
    stream.onEnd(() => clearInterval(heartbeat));
  })().catch(sink.fail);
}

function connect(
  call: ServerDuplexStream<ClientFrame, ServerFrame>,
  sessions: SessionStore,
  streams: Streams,
  chat: ChatService,
  log: Logger,
): void {
  const methodLog = log.child({ method: "Connect" });
  const sink = sinkOf(call, methodLog);
  let stream: ChatStream | undefined;
  let closed = false;
  let pending = 0;
  /** Sends committing for this stream; past MAX_UNACKED_SENDS the stream stops reading until one is done. */
  const unacked = new Set<Promise<void>>();

  const fail = (err: unknown) => {
    if (closed) return;
    closed = true;
    sink.fail(err);
    stream?.end();
  };
  const sessionReady = sessions.verify(bearerToken(call.metadata));
  // Frames are handled one at a time, in order; the chain itself never rejects.
  let chain: Promise<unknown> = sessionReady.catch(fail);

  sink.onClose(() => {
    closed = true;
    stream?.end();
  });
  // The client half-closed: no more frames will come, so the conversation is over.
  call.on("end", () => {
    chain = chain.then(async () => {
      // Acknowledge what is still committing before the stream closes.
      await Promise.allSettled([...unacked]);
      if (closed) return;
      closed = true;
      stream?.end();
      sink.end();
    });
  });

  /** Before hello there is no stream yet: only a send_failed can be written, straight to the sink. */
  const reply = (frame: ServerFrame) => (stream ? stream.send(encodeFrame(frame)) : sink.write(encodeFrame(frame)));
  const sendFailed = (clientMsgId: string, err: unknown) => {
    const { code, details } = toStatus(err, stream?.log ?? methodLog);
    reply({ sendFailed: { clientMsgId, code, reason: details } });
  };

  const handle = async (frame: ClientFrame | unknown) => {
    if (closed) return;
    const session = await sessionReady;
    if (isMalformed(frame)) {
      sendFailed("", new AppError("invalid_argument", `malformed frame: ${frame.malformed}`));
      return;
    }
    const f = frame as ClientFrame;
    if (f.hello) {
      if (stream) {
        stream.log.info("second hello ignored");
        return;
      }
      stream = await streams.open(session, sink, toCursorMap(f.hello.cursors));
      if (closed) stream.end();
      return;
    }
    if (!stream) {
      methodLog.info({ userId: session.userId }, "frame before hello");
      if (f.send) sendFailed(f.send.clientMsgId, new AppError("invalid_argument", "the first frame must be hello"));
      return;
    }
    const current = stream;
    // The server ended this stream (drain, revocation, too slow): frames still in the pipe are dropped.
    if (current.isEnded) return;
    if (f.send) {
      const { clientMsgId, to, body } = f.send;
      try {
        // Submitted in frame order; the next frame is handled while this one commits.
        const { committed } = await chat.submit(current.user, { clientMsgId, to, body });
        const acked = committed.then(
          (record) => current.send(encodeFrame({ sent: { clientMsgId, message: toMessage(record) } })),
          (err: unknown) => sendFailed(clientMsgId, err),
        );
        unacked.add(acked);
        void acked.finally(() => unacked.delete(acked));
        if (unacked.size >= MAX_UNACKED_SENDS) await Promise.race(unacked);
      } catch (err) {
        sendFailed(clientMsgId, err);
      }
    } else if (f.read) {
      await chat.markRead(current.user, f.read.conversationId, f.read.seq).catch((err: unknown) => toStatus(err, current.log));
    } else if (f.typing) {
      await chat.typing(current.user, f.typing.to).catch((err: unknown) => toStatus(err, current.log));
    } else if (f.ping) {
      current.send(encodeFrame({ pong: { nonce: f.ping.nonce } }));
    } else {
      current.log.info("empty client frame ignored");
    }
  };

  call.on("data", (frame: ClientFrame) => {
    pending += 1;
    if (pending > MAX_PENDING_FRAMES) call.pause();
    chain = chain
      .then(() => handle(frame))
      .catch(fail)
      .finally(() => {
        pending -= 1;
        if (pending < MAX_PENDING_FRAMES / 4 && call.isPaused()) call.resume();
      });
  });
}
