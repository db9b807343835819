import { randomUUID } from "node:crypto";
import { EventEmitter } from "node:events";
import { credentials, status, type ChannelOptions, type ClientDuplexStream, type ServiceError } from "@grpc/grpc-js";
import {
  ChatServiceClient,
  type ClientFrame,
  type Cursor,
  type Message,
  type PresenceEvent,
  type Ready,
  type ServerFrame,
  type Target,
  type TypingEvent,
} from "../../gen/parley/chat/v1/chat.js";
import { bearer, CHANNEL_OPTIONS } from "./api.js";
import { Backoff, type BackoffOptions } from "./backoff.js";

/** Stream endings after which reconnecting cannot help. */
const FATAL = new Set([status.UNAUTHENTICATED, status.PERMISSION_DENIED, status.INVALID_ARGUMENT, status.UNIMPLEMENTED]);

export interface ReconnectingClientOptions {
  /** One address, or several (pods): each reconnect moves on to the next one. */
  address: string | string[];
  token: string;
  /** Where to resume from, e.g. saved by a previous run. */
  cursors?: Iterable<Cursor>;
  backoff?: BackoffOptions;
  /** Application heartbeat, so that proxies see traffic on idle streams. Default 20 s; 0 turns it off. */
  pingIntervalMs?: number;
  /**
   * Extra grpc-js channel options. grpc-js shares one HTTP/2 connection between
   * clients of the same address; `{"grpc.use_local_subchannel_pool": 1}` gives
   * this client a connection of its own (the benchmark's virtual users need that).
   */
  channelOptions?: ChannelOptions;
}

/** A send that failed for good: `code` is the gRPC status code the server gave. */
class SendFailedError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    readonly clientMsgId: string,
  ) {
    super(`send ${clientMsgId} failed (${status[code] ?? code}): ${reason}`);
    this.name = "SendFailedError";
  }
}

interface PendingSend {
  frame: ClientFrame;
  resolve(message: Message): void;
  reject(err: Error): void;
}

export type ClientState = "connecting" | "replaying" | "live" | "waiting" | "closed";

export interface ReconnectingClientEvents {
  ready: [Ready];
  message: [Message];
  caughtUp: [];
  presence: [PresenceEvent];
  typing: [TypingEvent];
  pong: [string];
  drain: [string];
  state: [ClientState];
  /** The stream ended; the client reconnects unless `willRetry` is false. */
  disconnected: [{ code: number; details: string; willRetry: boolean }];
}

/**
 * A Connect stream that survives its server: it reconnects with backoff and
 * jitter (at once on a `drain` frame), resumes from the highest seq it has
 * seen in each conversation, drops anything it has already delivered, and
 * re-sends unacknowledged messages with their original client_msg_id, which
 * the server makes idempotent. Every message is emitted once, in seq order.
 */
export class ReconnectingClient extends EventEmitter<ReconnectingClientEvents> {
  private readonly addresses: string[];
  private readonly clients = new Map<string, ChatServiceClient>();
  private readonly cursors = new Map<string, number>();
  private readonly pending = new Map<string, PendingSend>();
  private readonly backoff: Backoff;
  private addressIndex = 0;
  private call: ClientDuplexStream<ClientFrame, ServerFrame> | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private pingTimer: NodeJS.Timeout | undefined;
  private currentState: ClientState = "closed";
  private stopped = true;
  /** The last presence state heard of each user: corrected after a reconnect (see `refreshPresence`). */
  private readonly presence = new Map<string, boolean>();
  /** How many presence frames were heard of each user, so that a refresh never overrides a newer frame. */
  private readonly presenceHeard = new Map<string, number>();
  /** Streams opened so far: after the first, a caught_up also refreshes presence. */
  private opened = 0;

  constructor(private readonly options: ReconnectingClientOptions) {
    super();
    this.addresses = Array.isArray(options.address) ? [...options.address] : [options.address];
    this.backoff = new Backoff(options.backoff);
    for (const cursor of options.cursors ?? []) this.cursors.set(cursor.conversationId, cursor.seq);
  }

  get state(): ClientState {
    return this.currentState;
  }

  /** The pod address the current (or next) stream uses. */
  get address(): string {
    return this.addresses[this.addressIndex % this.addresses.length];
  }

  /** The highest seq delivered per conversation: what a reconnect resumes from. */
  getCursors(): Cursor[] {
    return [...this.cursors].map(([conversationId, seq]) => ({ conversationId, seq }));
  }

  start(): this {
    if (!this.stopped) return this;
    this.stopped = false;
    this.open();
    const interval = this.options.pingIntervalMs ?? 20_000;
    if (interval > 0) {
      this.pingTimer = setInterval(() => this.write({ ping: { nonce: String(Date.now()) } }), interval);
      this.pingTimer.unref();
    }
    return this;
  }

  /**
   * Sends and resolves with the stored message once the server acknowledges
   * it (durable). Survives reconnects: an unacknowledged send is repeated with
   * the same id. Rejects with SendFailedError when the server refuses it.
   */
  send(to: Target, body: string, clientMsgId: string = randomUUID()): Promise<Message> {
    return new Promise((resolve, reject) => {
      const frame: ClientFrame = { send: { clientMsgId, to, body } };
      this.pending.set(clientMsgId, { frame, resolve, reject });
      if (this.currentState === "replaying" || this.currentState === "live") this.write(frame);
    });
  }

  typing(to: Target): void {
    this.write({ typing: { to } });
  }

  markRead(conversationId: string, seq: number): void {
    this.write({ read: { conversationId, seq } });
  }

  ping(nonce: string = randomUUID()): void {
    this.write({ ping: { nonce } });
  }

  /** Ends the stream for good; unacknowledged sends are rejected. */
  close(): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.pingTimer);
    const call = this.call;
    this.call = undefined;
    call?.cancel();
    for (const [id, send] of this.pending) send.reject(new SendFailedError(status.CANCELLED, "client closed", id));
    this.pending.clear();
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
    this.setState("closed");
  }

  private client(): ChatServiceClient {
    const address = this.address;
    let client = this.clients.get(address);
    if (client === undefined) {
      client = new ChatServiceClient(address, credentials.createInsecure(), { ...CHANNEL_OPTIONS, ...this.options.channelOptions });
      this.clients.set(address, client);
    }
    return client;
  }

  private open(): void {
    if (this.stopped) return;
    this.setState("connecting");
    this.opened += 1;
    const call = this.client().connect(bearer(this.options.token));
    this.call = call;
    call.on("data", (frame: ServerFrame) => {
      if (this.call === call) this.onFrame(frame);
    });
    call.on("error", (err: ServiceError) => this.onEnd(call, err.code, err.details));
    call.on("end", () => this.onEnd(call, status.UNAVAILABLE, "stream ended by the server"));
    // Batches: a busy stream costs the server one write per batch, not one per frame.
    call.write({ hello: { cursors: this.getCursors(), acceptBatch: true } });
    this.setState("replaying");
    // Anything unacknowledged goes again; the server returns the original for ids it already stored.
    for (const send of this.pending.values()) call.write(send.frame);
  }

  private onFrame(frame: ServerFrame): void {
    if (frame.batch) for (const inner of frame.batch.frames) this.onFrame(inner);
    else if (frame.message) this.deliver(frame.message);
    else if (frame.sent) this.resolvePending(frame.sent.clientMsgId, frame.sent.message);
    else if (frame.sendFailed) this.fail(frame.sendFailed.clientMsgId, frame.sendFailed.code, frame.sendFailed.reason);
    else if (frame.ready) this.emit("ready", frame.ready);
    else if (frame.caughtUp) {
      this.backoff.reset();
      this.setState("live");
      this.emit("caughtUp");
      if (this.opened > 1) this.refreshPresence();
    } else if (frame.presence) {
      this.presence.set(frame.presence.username, frame.presence.online);
      this.presenceHeard.set(frame.presence.username, (this.presenceHeard.get(frame.presence.username) ?? 0) + 1);
      this.emit("presence", frame.presence);
    } else if (frame.typing) this.emit("typing", frame.typing);
    else if (frame.pong) this.emit("pong", frame.pong.nonce);
    else if (frame.drain) {
      this.emit("drain", frame.drain.reason);
      // Leave now rather than wait for the server to end the stream; the next address takes us.
      this.reconnect(0);
    }
  }

  /**
   * Presence changes are events, not history: one that happened while this
   * client was reconnecting was never sent to it. After a reconnect it asks
   * ListOnlineUsers and emits a `presence` event for each user it knows of
   * whose state changed meanwhile, so that what it shows agrees with the
   * server again.
   */
  private refreshPresence(): void {
    if (this.presence.size === 0) return;
    // A live presence frame that arrives while the list is on its way is newer than the list: it wins.
    const heardBefore = new Map(this.presenceHeard);
    this.client().listOnlineUsers({}, bearer(this.options.token), { deadline: Date.now() + 10_000 }, (err, response) => {
      if (err || response === undefined || this.stopped) return;
      const online = new Set(response.usernames);
      for (const [username, was] of this.presence) {
        if ((this.presenceHeard.get(username) ?? 0) !== (heardBefore.get(username) ?? 0)) continue;
        const now = online.has(username);
        if (now === was) continue;
        this.presence.set(username, now);
        this.emit("presence", { username, online: now });
      }
    });
  }

  /** Emits each (conversation, seq) once: anything at or below the cursor was delivered already. */
  private deliver(message: Message): void {
    const seen = this.cursors.get(message.conversationId) ?? 0;
    if (message.seq <= seen) return;
    this.cursors.set(message.conversationId, message.seq);
    this.emit("message", message);
  }

  private resolvePending(clientMsgId: string, message: Message | undefined): void {
    const send = this.pending.get(clientMsgId);
    if (send === undefined || message === undefined) return;
    this.pending.delete(clientMsgId);
    send.resolve(message);
  }

  private fail(clientMsgId: string, code: number, reason: string): void {
    const send = this.pending.get(clientMsgId);
    if (send === undefined) return;
    // UNAVAILABLE means a dependency is down for now: keep it, and try again shortly on this stream.
    if (code === status.UNAVAILABLE) {
      setTimeout(() => this.pending.get(clientMsgId) === send && this.write(send.frame), this.backoff.next()).unref();
      return;
    }
    this.pending.delete(clientMsgId);
    send.reject(new SendFailedError(code, reason, clientMsgId));
  }

  private onEnd(call: ClientDuplexStream<ClientFrame, ServerFrame>, code: number, details: string): void {
    if (this.call !== call || this.stopped) return;
    const willRetry = !FATAL.has(code);
    this.emit("disconnected", { code, details, willRetry });
    if (!willRetry) {
      this.close();
      return;
    }
    this.reconnect(this.backoff.next());
  }

  private reconnect(delayMs: number): void {
    const call = this.call;
    this.call = undefined;
    call?.cancel();
    if (this.stopped) return;
    this.addressIndex += 1;
    this.setState("waiting");
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.open(), delayMs);
  }

  private write(frame: ClientFrame): void {
    if (this.call && (this.currentState === "replaying" || this.currentState === "live")) this.call.write(frame);
  }

  private setState(state: ClientState): void {
    if (state === this.currentState) return;
    this.currentState = state;
    this.emit("state", state);
  }
}
