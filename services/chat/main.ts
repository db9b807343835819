import type { SessionStore } from "../auth/sessions.js";
import type { Db, PreparedQuery } from "../db/client.js";
import type { Config } from "../lib/config.js";
import type { HostedService } from "../lib/grpc-server.js";
import type { Logger } from "../lib/logger.js";
import type { ServerMetrics } from "../lib/metrics.js";
import type { Bus } from "./bus.js";
import { chatServiceDefinition, createChatHandler } from "./chat-handler.js";
import { ChatMetrics, countRefusals } from "./chat-metrics.js";
import { ChatDomain } from "./chat-service.js";
import { ConversationStore } from "./conversation-store.js";
import { EventPublisher } from "./event-publisher.js";
import { GroupStore } from "./group-store.js";
import { Hub } from "./hub.js";
import { RecentMessages } from "./recent-messages.js";
import { livePositions } from "./live-positions.js";
import { MessageSender } from "./message-sender.js";
import { MessageStore } from "./message-store.js";
import type { Presence } from "./presence.js";
import { PresenceAnnouncer } from "./presence-announcer.js";
import type { RateLimiterFactory } from "./rate-limit.js";
import { ReadCursorStore } from "./read-cursor-store.js";
import { ReplayPlanner } from "./replay-planner.js";
import { StreamCalls } from "./stream-call.js";
import { StreamOpener } from "./stream-opener.js";
import { StreamReconciler } from "./stream-reconciler.js";
import { TargetResolver } from "./target-resolver.js";
import { UserDirectory } from "./user-directory.js";

export interface ChatDeps {
  config: Config;
  db: Db;
  prepared: PreparedQuery;
  bus: Bus;
  presence: Presence;
  sessions: SessionStore;
  /** Makes the per-user limiters (memory or Redis, see backends.ts). */
  rateLimiter: RateLimiterFactory;
  /** This process's registry: the chat reports its parley_* metrics there (chat-metrics.ts). */
  metrics: ServerMetrics;
  log: Logger;
}

/** The chat service as this pod hosts it, with the handles its shutdown needs. */
export interface HostedChat {
  service: HostedService;
  /** Sends `drain` to every stream and ends it with UNAVAILABLE; refuses new ones. Returns how many streams it ended. */
  drain(reason: string): number;
  /** Ends the streams of a revoked session, including those still waiting for hello. */
  endSession(sessionId: number): void;
  /** Starts comparing this pod's streams with Postgres (stream-reconciler.ts) until `signal` aborts. */
  reconcile(signal: AbortSignal): void;
  /** Resolves once in-flight sends have committed or failed. */
  waitForSends(): Promise<void>;
  /** Resolves once the presence removals of ended streams and the presence announcements under way are done. */
  waitForPresence(): Promise<void>;
}

/** Wires the chat domain, this pod's hub and the gRPC handler together. */
export function createChat({ config, db, prepared, bus, presence, sessions, rateLimiter: limiters, metrics: registry, log }: ChatDeps): HostedChat {
  const metrics = new ChatMetrics(registry);
  const rateLimiter = countRefusals(limiters, registry);
  bus.onGap(() => metrics.busGap());
  const messages = new MessageStore(db, prepared, (count) => metrics.appended(count));
  const conversations = new ConversationStore(db);
  const users = new UserDirectory(db);
  const groups = new GroupStore(db);
  // The newest messages the hub sees, so that a reconnect storm's replays need no Postgres read each.
  const recent = new RecentMessages();
  const hub = new Hub(bus, log, metrics, recent);
  const events = new EventPublisher(bus, hub, log.child({ component: "events" }));
  const targets = new TargetResolver(users, groups);
  const sender = new MessageSender({
    messages,
    targets,
    events,
    sendLimiter: rateLimiter("send", { perSecond: config.rateLimitPerSecond, burst: config.rateLimitBurst }),
    metrics,
    log,
  });
  const chat = new ChatDomain({
    messages,
    conversations,
    readCursors: new ReadCursorStore(db),
    targets,
    groups,
    bus,
    events,
    presence,
    // Typing frames are cheap but fan out: allow a few a second, no more.
    typingLimiter: rateLimiter("typing", { perSecond: 2, burst: 5 }),
    log,
  });
  const replay = new ReplayPlanner(conversations, messages, recent);
  const calls = new StreamCalls(log.child({ component: "stream-calls" }));
  const opener = new StreamOpener({ chat, replay, presence, hub, podName: config.podName, queueLimit: config.streamQueueLimit, log });
  // Every change of a user's presence, whatever its cause, is announced from here, by the one pod that claimed it.
  const announcer = new PresenceAnnouncer(conversations, bus, log.child({ component: "presence" }));
  presence.onChange((user, online) => announcer.announce(user, online));
  const reconciler = new StreamReconciler({ hub, calls, sessions, positions: (userIds) => livePositions(db, userIds), log });
  return {
    service: {
      fullName: "parley.chat.v1.ChatService",
      definition: chatServiceDefinition,
      implementation: createChatHandler({ chat, sender, sessions, opener, calls, metrics, log }),
    },
    drain: (reason) => calls.drain(reason),
    endSession: (sessionId) => void calls.endSession(sessionId, "session revoked"),
    reconcile: (signal) => reconciler.start(signal),
    waitForSends: () => sender.waitForSends(),
    waitForPresence: async () => {
      await opener.settled();
      await announcer.settled();
    },
  };
}
