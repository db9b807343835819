import { type Session, userOf } from "../auth/sessions.js";
import type { Logger } from "../lib/logger.js";
import type { ChatDomain } from "./chat-service.js";
import { ChatStream } from "./chat-stream.js";
import { encodeFrame } from "./frames.js";
import type { Hub } from "./hub.js";
import { InFlight } from "../lib/in-flight.js";
import type { Presence } from "./presence.js";
import type { ReplayPlanner } from "./replay-planner.js";
import type { StreamCall } from "./stream-call.js";

export interface StreamOpenerOptions {
  chat: ChatDomain;
  replay: ReplayPlanner;
  presence: Presence;
  hub: Hub;
  podName: string;
  queueLimit: number;
  log: Logger;
}

/**
 * Opens Connect and Subscribe streams in the order the delivery guarantees
 * need: listen to live events first, then replay from Postgres, then
 * `caught_up`, then live events minus anything already replayed.
 */
export class StreamOpener {
  /** Presence removals of ended streams, still under way: shutdown waits for them (`settled`). */
  private readonly closing = new InFlight();

  constructor(private readonly options: StreamOpenerOptions) {}

  /** Resolves once the presence removals of streams that ended so far are done. */
  settled(): Promise<void> {
    return this.closing.settled();
  }

  /**
   * Opens the chat stream of `call` (its owner, which the stream writes to
   * and which ends it). `acceptBatch`: the client asked for `batch` frames
   * (hello or SubscribeRequest); default false. Rejects when the stream cannot open (the caller ends
   * the call with the mapped status).
   */
  async open(call: StreamCall, session: Session, cursors: Map<string, number>, acceptBatch = false): Promise<ChatStream> {
    const { chat, replay, presence, hub, podName, queueLimit, log } = this.options;
    const user = userOf(session);
    const stream = new ChatStream({
      user,
      sessionId: session.sessionId,
      sink: call,
      queueLimit,
      acceptBatch,
      loadRange: (conversationId, afterSeq, beforeSeq) => replay.missed(conversationId, afterSeq, beforeSeq),
      log,
    });
    call.stream = stream;
    try {
      const followed = await chat.followedConversations(user);
      // The call may have ended meanwhile (cancel, revocation, drain): then nothing may be registered for it.
      if (stream.isEnded) return stream;
      stream.send(encodeFrame({ ready: { user: { id: String(user.id), username: user.username }, pod: podName } }));
      await hub.add(stream, followed);
      if (stream.isEnded) return stream;
      // Presence and the online announcement overlap the replay instead of delaying it.
      const opened = presence.add(user, stream.id);
      opened.catch(() => undefined);
      // The stream is forgotten only after it was recorded, so that the removal always follows the addition.
      stream.onEnd(() => {
        // If it was the user's last stream anywhere, presence announces them offline after its grace.
        const removed = opened.catch(() => undefined).then(() => presence.remove(user, stream.id));
        this.closing.track(removed).catch((err: unknown) => stream.log.warn({ err }, "could not record going offline"));
      });
      this.expireWithSession(stream, session.expiresAt);

      const positions = new Map<string, number>();
      for (const plan of await replay.plan(user, cursors)) {
        positions.set(plan.conversationId, plan.fromSeq);
        // From a cursor, page until the end; the offline queue is one capped page.
        for (let after = plan.fromSeq; after < plan.lastSeq; ) {
          const page = await replay.page(plan, after);
          for (const { seq, frame } of page) {
            if (stream.isEnded) return stream;
            await stream.replay(plan.conversationId, seq, frame);
          }
          if (plan.capped || page.length === 0) break;
          after = page[page.length - 1].seq;
        }
      }
      await opened;
      stream.caughtUp(positions, encodeFrame({ caughtUp: {} }));
      stream.log.debug({ conversations: positions.size }, "stream caught up");
    } catch (err) {
      // The caller ends the call with the status this error maps to.
      if (!stream.isEnded) call.fail(err);
      throw err;
    }
    return stream;
  }

  private expireWithSession(stream: ChatStream, expiresAt: number): void {
    // setTimeout overflows past ~24.8 days: a stream on a longer-lived token is ended then, and reconnects.
    const timer = setTimeout(() => stream.end("unauthenticated", "session expired"), Math.min(expiresAt - Date.now(), 2 ** 31 - 1));
    timer.unref();
    stream.onEnd(() => clearTimeout(timer));
  }
}
