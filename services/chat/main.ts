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
import { RateLimiter } from "./rate-limit.js";
import { Streams } from "./streams.js";

export interface ChatDeps {
  config: Config;
  db: Db;
  prepared: PreparedQuery;
  bus: Bus;
  presence: Presence;
  sessions: SessionStore;
  log: Logger;
}

export interface Chat {
  service: HostedService;
  /** Sends `drain` to every stream and ends it with UNAVAILABLE; refuses new ones. */
  drain(reason: string): number;
  /** Ends the streams of a revoked session. */
  endSession(sessionId: number): void;
  /** Resolves once in-flight sends have committed or failed. */
  settle(): Promise<void>;
}

/** Wires the chat domain, this pod's hub and the gRPC handler together. */
export function createChat({ config, db, prepared, bus, presence, sessions, log }: ChatDeps): Chat {
  const hub = new Hub(bus, log);
  const chat = new ChatService({
    messages: new MessageStore(db, prepared),
    groups: new GroupStore(db),
    bus,
    presence,
    sendLimiter: new RateLimiter(config.rateLimitPerSecond, config.rateLimitBurst),
    // Typing frames are cheap but fan out: allow a few a second, no more.
    typingLimiter: new RateLimiter(2, 5),
    log,
  });
  const streams = new Streams({ chat, hub, podName: config.podName, queueLimit: config.streamQueueLimit, log });
  presence.onExpired((user) => {
    chat.announcePresence(user, false).catch((err: unknown) => log.warn({ err }, "could not announce an expired user"));
  });
  bus.onGap(() => {
    const ended = hub.endAll("unavailable", "live events may have been missed: resume from your cursors");
    if (ended > 0) log.warn({ streams: ended }, "bus connection interrupted; ended streams so that clients resume");
  });
  return {
    service: {
      fullName: "parley.chat.v1.ChatService",
      definition: chatServiceDefinition,
      implementation: createChatHandler({ chat, sessions, streams, log }),
    },
    drain: (reason) => streams.drainAll(reason),
    endSession: (sessionId) => hub.endSession(sessionId),
    settle: () => chat.settle(),
  };
}
