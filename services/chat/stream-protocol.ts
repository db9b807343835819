// The frame protocol of Connect and Subscribe, beside the stream code
// (stream-call.ts, stream-opener.ts): `hello` first, sends submitted in frame
// order with a window of unacknowledged ones, reads, typing and pings, the
// Subscribe heartbeat. The handler (chat-handler.ts) only delegates here.
import type { Metadata, ServerDuplexStream, ServerWritableStream } from "@grpc/grpc-js";
import type { ClientFrame, Cursor, ServerFrame, SubscribeRequest } from "../../gen/parley/chat/v1/chat.js";
import type { Session, SessionStore } from "../auth/sessions.js";
import { AppError } from "../lib/app-error.js";
import { logFailure, toStatus } from "../lib/errors.js";
import { bearerToken, isMalformed } from "../lib/grpc-calls.js";
import type { Logger } from "../lib/logger.js";
import type { ChatMetrics } from "./chat-metrics.js";
import type { ChatDomain } from "./chat-service.js";
import { encodeFrame, sentFrame } from "./frames.js";
import { StreamCall, type GrpcFrameStream, type StreamCalls } from "./stream-call.js";
import type { MessageSender } from "./message-sender.js";
import type { StreamOpener } from "./stream-opener.js";

/** A Subscribe stream gets an unsolicited `pong{nonce:"heartbeat"}` this often: below Envoy's 300 s stream idle timeout. */
const SUBSCRIBE_HEARTBEAT_MS = 60_000;
const HEARTBEAT = encodeFrame({ pong: { nonce: "heartbeat" } });

/** Sends of one stream committing at once, at most. */
const MAX_UNACKED_SENDS = 256;

/** Client frames waiting to be handled before we stop reading from the socket. */
const MAX_PENDING_FRAMES = 64;

/** What a chat call needs, unary or stream: the domain, the send path, sessions, the stream opener and registry. */
export interface ChatCallDeps {
  chat: ChatDomain;
  sender: MessageSender;
  sessions: SessionStore;
  opener: StreamOpener;
  calls: StreamCalls;
  metrics?: ChatMetrics;
  log: Logger;
}

const toCursorMap = (cursors: Cursor[] | undefined) =>
  new Map((cursors ?? []).filter((c) => c.conversationId).map((c) => [c.conversationId, Math.max(0, c.seq)]));

/** Verifies the call's token and records its session on the owner, so that a revocation can end it from now on. */
async function authenticate(call: StreamCall, metadata: Metadata, sessions: SessionStore): Promise<Session> {
  const session = await sessions.verify(bearerToken(metadata));
  call.sessionId = session.sessionId;
  return session;
}

/** `Subscribe`: the request's cursors open the stream at once; a heartbeat keeps proxies from timing it out. */
export function serveSubscribe(grpcCall: ServerWritableStream<SubscribeRequest, ServerFrame>, deps: ChatCallDeps): void {
  const call = new StreamCall(grpcCall as GrpcFrameStream, deps.calls, deps.log.child({ method: "Subscribe" }));
  deps.metrics?.streamOpened("subscribe", call);
  const request = grpcCall.request as unknown;
  (async () => {
    if (isMalformed(request)) throw new AppError("invalid_argument", `malformed request: ${request.malformed}`);
    const session = await authenticate(call, grpcCall.metadata, deps.sessions);
    if (call.ended) return;
    const heartbeat = setInterval(() => call.stream?.send(HEARTBEAT), SUBSCRIBE_HEARTBEAT_MS);
    heartbeat.unref();
    call.onClose(() => clearInterval(heartbeat));
    await deps.opener.open(call, session, toCursorMap(grpcCall.request.cursors), grpcCall.request.acceptBatch === true);
  })().catch((err: unknown) => call.fail(err));
}

/**
 * `Connect`: client frames are handled one at a time, in order; the first
 * must be `hello`. Sends are submitted in frame order without waiting for
 * each commit, so the next frame is read while one commits; their answers
 * (`sent`, or `send_failed` for a failed commit) go out in frame order.
 */
export function serveConnect(grpcCall: ServerDuplexStream<ClientFrame, ServerFrame>, deps: ChatCallDeps): void {
  const { chat, sender, sessions, opener } = deps;
  const call = new StreamCall(grpcCall as GrpcFrameStream, deps.calls, deps.log.child({ method: "Connect" }));
  deps.metrics?.streamOpened("connect", call);
  const { signal } = call;
  let pending = 0;
  /** Sends committing for this stream; past MAX_UNACKED_SENDS the stream stops reading until one is done. */
  const unacked = new Set<Promise<void>>();
  /** The answer (`sent` or `send_failed`) of the latest send submitted; never rejects. */
  let lastAnswer: Promise<void> = Promise.resolve();

  const sessionReady = authenticate(call, grpcCall.metadata, sessions);
  // Frames are handled one at a time, in order; the chain itself never rejects.
  let chain: Promise<unknown> = sessionReady.catch((err: unknown) => call.fail(err));

  // The client half-closed: no more frames will come, so the conversation is over once the acks are out.
  grpcCall.on("end", () => {
    chain = chain.then(async () => {
      await Promise.allSettled([...unacked]);
      call.end();
    });
  });

  /** Before hello there is no chat stream yet: only a send_failed can be written, straight to the call. */
  const reply = (frame: ServerFrame) => (call.stream ? call.stream.send(encodeFrame(frame)) : call.write(encodeFrame(frame)));
  const sendFailed = (clientMsgId: string, err: unknown) => {
    logFailure(call.stream?.log ?? call.log, err);
    const { code, details } = toStatus(err);
    reply({ sendFailed: { clientMsgId, code, reason: details } });
  };

  const handle = async (frame: ClientFrame | unknown) => {
    if (signal.aborted) return;
    const session = await sessionReady;
    if (signal.aborted) return;
    if (isMalformed(frame)) {
      // A hello the stream cannot open with ends the call: waiting for another would leave the client without `ready`.
      if (!call.stream && typeof frame.field === "string" && frame.field.startsWith("hello")) {
        call.fail(new AppError("invalid_argument", `malformed hello: ${frame.malformed}`));
        return;
      }
      const clientMsgId = typeof frame.clientMsgId === "string" ? frame.clientMsgId : "";
      sendFailed(clientMsgId, new AppError("invalid_argument", `malformed frame: ${frame.malformed}`));
      return;
    }
    const f = frame as ClientFrame;
    if (f.hello) {
      if (call.stream) {
        call.stream.log.info("second hello ignored");
        return;
      }
      // The token may have been revoked while the stream waited for hello.
      await sessions.verify(bearerToken(grpcCall.metadata));
      if (signal.aborted) return;
      await opener.open(call, session, toCursorMap(f.hello.cursors), f.hello.acceptBatch === true);
      return;
    }
    const stream = call.stream;
    if (!stream) {
      call.log.info({ userId: session.userId }, "frame before hello");
      if (f.send) sendFailed(f.send.clientMsgId, new AppError("invalid_argument", "the first frame must be hello"));
      return;
    }
    if (f.send) {
      const { clientMsgId, to, body } = f.send;
      try {
        // Submitted in frame order; the next frame is handled while this one commits.
        const { committed } = await sender.submit(stream.user, { clientMsgId, to, body });
        // Answered in frame order: after the previous send's answer, whichever commits first.
        const acked = lastAnswer.then(() =>
          committed.then(
            (record) => stream.send(sentFrame(clientMsgId, record)),
            (err: unknown) => sendFailed(clientMsgId, err),
          ),
        );
        lastAnswer = acked;
        unacked.add(acked);
        void acked.finally(() => unacked.delete(acked));
        if (unacked.size >= MAX_UNACKED_SENDS) await Promise.race(unacked);
      } catch (err) {
        sendFailed(clientMsgId, err);
      }
    } else if (f.read) {
      await chat.markRead(stream.user, f.read.conversationId, f.read.seq).catch((err: unknown) => logFailure(stream.log, err));
    } else if (f.typing) {
      await chat.typing(stream.user, f.typing.to).catch((err: unknown) => logFailure(stream.log, err));
    } else if (f.ping) {
      stream.send(encodeFrame({ pong: { nonce: f.ping.nonce } }));
    } else {
      stream.log.info("empty client frame ignored");
    }
  };

  grpcCall.on("data", (frame: ClientFrame) => {
    // The call has ended (drain, revocation, too slow): frames still in the pipe are dropped.
    if (signal.aborted) return;
    pending += 1;
    if (pending > MAX_PENDING_FRAMES) grpcCall.pause();
    chain = chain
      .then(() => handle(frame))
      .catch((err: unknown) => call.fail(err))
      .finally(() => {
        pending -= 1;
        if (pending < MAX_PENDING_FRAMES / 4 && grpcCall.isPaused()) grpcCall.resume();
      });
  });
}
