import type { ServerDuplexStream, ServerWritableStream } from "@grpc/grpc-js";
import type { ServerFrame } from "../../gen/parley/chat/v1/chat.js";
import { AppError, type ErrorKind } from "../lib/app-error.js";
import { logFailure, toServiceError } from "../lib/errors.js";
import { onConnectionClosing } from "../lib/http2-session.js";
import type { Logger } from "../lib/logger.js";
import type { ChatStream, FrameSink } from "./chat-stream.js";
import { drainFrame } from "./frames.js";

/** A Connect or Subscribe call as grpc-js hands it over; frames may be pre-encoded bytes. */
export type GrpcFrameStream = ServerWritableStream<unknown, ServerFrame | Buffer> | ServerDuplexStream<unknown, ServerFrame | Buffer>;

/** Why a call ended, as `signal.reason`: `error` undefined means OK; `byClient` means the client went first. */
export interface CallEnd {
  error?: unknown;
  byClient?: boolean;
}

/**
 * The one owner of a Connect or Subscribe call's life, from the moment grpc-js
 * hands it over (before the token is checked, before `hello`) to its status.
 * It holds one `AbortSignal`, and every way the call can end goes through
 * `end` or `fail` and aborts it: client cancel, revocation, expiry, drain,
 * connection recycling, slow consumer, a missed bus event, server shutdown.
 * Everything the call started (its ChatStream, timers, frame handling)
 * listens to that signal. It is also the ChatStream's transport (`FrameSink`).
 */
export class StreamCall implements FrameSink {
  readonly log: Logger;
  /** Known once the token is verified; the registry ends calls by session. */
  sessionId: number | undefined;
  /** Set once `hello` (or the Subscribe request) opened the chat stream. */
  stream: ChatStream | undefined;
  private readonly controller = new AbortController();
  private readonly writable: NodeJS.WritableStream & NodeJS.EventEmitter;

  constructor(
    private readonly call: GrpcFrameStream,
    private readonly registry: StreamCalls,
    log: Logger,
  ) {
    this.log = log;
    this.writable = call as unknown as NodeJS.WritableStream & NodeJS.EventEmitter;
    const clientGone = () => this.finish({ byClient: true });
    call.once("cancelled", clientGone);
    call.once("close", clientGone);
    registry.add(this);
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get ended(): boolean {
    return this.controller.signal.aborted;
  }

  /** The grpc-js call, whose HTTP/2 connection the registry watches for recycling (lib/http2-session.ts). */
  get grpcCall(): GrpcFrameStream {
    return this.call;
  }

  write(frame: Buffer): boolean {
    return !this.ended && this.writable.write(frame);
  }

  onDrain(callback: () => void): void {
    this.writable.once("drain", callback);
  }

  /**
   * Ends the call: OK without `kind`, else with that status. `lastFrame` (the
   * drain) is written first, even when the transport is full. Only the first
   * ending counts.
   */
  end(kind?: ErrorKind, reason?: string, lastFrame?: Buffer): void {
    this.finish({ error: kind === undefined ? undefined : new AppError(kind, reason ?? kind) }, lastFrame);
  }

  /** Ends the call with the status `err` maps to (lib/errors.ts). */
  fail(err: unknown): void {
    this.finish({ error: err ?? new Error("stream failed") });
  }

  /** Runs `listener` once when the call ends, for whatever reason (at once if it has). */
  onClose(listener: () => void): void {
    if (this.ended) listener();
    else this.signal.addEventListener("abort", listener, { once: true });
  }

  private finish(end: CallEnd, lastFrame?: Buffer): void {
    if (this.ended) return;
    // Frames the stream queued this turn go out before the drain frame or the status.
    if (!end.byClient) this.stream?.flush();
    this.controller.abort(end);
    this.registry.delete(this);
    if (end.byClient || this.call.cancelled) return;
    if (lastFrame) this.writable.write(lastFrame);
    if (end.error === undefined) this.call.end();
    else {
      logFailure(this.log, end.error);
      this.writable.emit("error", toServiceError(end.error));
    }
  }
}

/**
 * This pod's open Connect and Subscribe calls, from their first byte: what a
 * revocation, the session sweep, a drain or a recycled connection ends.
 */
export class StreamCalls {
  private readonly calls = new Set<StreamCall>();
  private drainReason: string | undefined;

  constructor(private readonly log: Logger) {}

  get size(): number {
    return this.calls.size;
  }

  add(call: StreamCall): void {
    if (this.drainReason !== undefined) {
      call.end("unavailable", "this pod is draining, reconnect elsewhere", drainFrame(this.drainReason));
      return;
    }
    this.calls.add(call);
    // A connection that grpc-js recycles (GRPC_MAX_CONNECTION_AGE_SECONDS) drains its calls first.
    const stopWatching = onConnectionClosing(call.grpcCall, () => {
      call.end("unavailable", "connection recycled: reconnect and resume", drainFrame("connection recycled"));
    });
    call.onClose(stopWatching);
  }

  delete(call: StreamCall): void {
    this.calls.delete(call);
  }

  /** The sessions behind the open calls, for the sweep that asks Postgres which of them ended. */
  sessionIds(): number[] {
    const ids = new Set<number>();
    for (const call of this.calls) if (call.sessionId !== undefined) ids.add(call.sessionId);
    return [...ids];
  }

  /** Ends every call opened with `sessionId`, including those still waiting for `hello`. */
  endSession(sessionId: number, reason: string): number {
    let ended = 0;
    for (const call of [...this.calls]) {
      if (call.sessionId !== sessionId) continue;
      call.end("unauthenticated", reason);
      ended += 1;
    }
    if (ended > 0) this.log.info({ sessionId, calls: ended, reason }, "ended the streams of a session");
    return ended;
  }

  /** The drain: refuses new calls; each open one gets `drain{reason}` and then UNAVAILABLE. */
  drain(reason: string): number {
    this.drainReason = reason;
    return this.endAll("unavailable", `${reason}: reconnect and resume`, drainFrame(reason));
  }

  /** Ends every open call with `kind`, after `lastFrame` if given. */
  endAll(kind: ErrorKind, reason: string, lastFrame?: Buffer): number {
    const calls = [...this.calls];
    for (const call of calls) call.end(kind, reason, lastFrame);
    return calls.length;
  }
}
