import type { SessionStore } from "../auth/sessions.js";
import type { Config } from "../lib/config.js";
import type { HostedService } from "../lib/grpc-server.js";
import type { Logger } from "../lib/logger.js";
import type { Db, PreparedQuery } from "../db/client.js";
import type { Bus } from "./bus.js";
import { chatServiceDefinition, createChatHandler } from "./chat-handler.js";
import { ChatService } from "./chat-service.js";
import { GroupStore } from "./group-store.js";
import { Hub } from "./hub.js";
import { MessageStore } from "./message-store.js";
import type { Presence } from "./presence.js";
import type { RateLimiterFactory } from "./rate-limit.js";
import { livePositions } from "./live-positions.js";
import { StreamCalls } from "./stream-call.js";
import { StreamReconciler } from "./stream-reconciler.js";
import { Streams } from "./streams.js";

export interface ChatDeps {
  config: Config;
  db: Db;
  prepared: PreparedQuery;
  bus: Bus;
  presence: Presence;
  sessions: SessionStore;
  /** Makes the per-user limiters (memory or Redis, see shared-state.ts). */
  rateLimiter: RateLimiterFactory;
  log: Logger;
}

export interface Chat {
  service: HostedService;
  /** Sends `drain` to every stream and ends it with UNAVAILABLE; refuses new ones. */
  drain(reason: string): number;
  /** Ends the streams of a revoked session, including those still waiting for hello. */
  endSession(sessionId: number): void;
  /** Starts comparing this pod's streams with Postgres (stream-reconciler.ts) until `signal` aborts. */
  reconcile(signal: AbortSignal): void;
  /** Resolves once in-flight sends have committed or failed. */
  settle(): Promise<void>;
}

/** Wires the chat domain, this pod's hub and the gRPC handler together. */
export function createChat({ config, db, prepared, bus, presence, sessions, rateLimiter, log }: ChatDeps): Chat {
  const hub = new Hub(bus, log);
  const calls = new StreamCalls(log.child({ component: "stream-calls" }));
  const chat = new ChatService({
    messages: new MessageStore(db, prepared),
    groups: new GroupStore(db),
    bus,
    presence,
    sendLimiter: rateLimiter("send", { perSecond: config.rateLimitPerSecond, burst: config.rateLimitBurst }),
    // Typing frames are cheap but fan out: allow a few a second, no more.
    typingLimiter: rateLimiter("typing", { perSecond: 2, burst: 5 }),
    log,
  });
  const streams = new Streams({ chat, hub, podName: config.podName, queueLimit: config.streamQueueLimit, log });
  // Every change of a user's presence, whatever its cause, is announced from here, by the one pod that claimed it.
  presence.onChange((user, online) => chat.announcePresence(user, online));
  const reconciler = new StreamReconciler({ hub, calls, sessions, positions: (userIds) => livePositions(db, userIds), log });
  bus.onGap(() => {
    const ended = hub.endAll("unavailable", "live events may have been missed: resume from your cursors");
    if (ended > 0) log.warn({ streams: ended }, "bus connection interrupted; ended streams so that clients resume");
  });
  return {
    service: {
      fullName: "parley.chat.v1.ChatService",
      definition: chatServiceDefinition,
      implementation: createChatHandler({ chat, sessions, streams, calls, log }),
    },
    drain: (reason) => calls.drain(reason),
    endSession: (sessionId) => void calls.endSession(sessionId, "session revoked"),
    reconcile: (signal) => reconciler.start(signal),
    settle: () => chat.settle(),
  };
}
