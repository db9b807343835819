import { setTimeout as sleep } from "node:timers/promises";
import { InFlight } from "../lib/in-flight.js";
import { userChannel } from "../lib/keys.js";
import type { Logger } from "../lib/logger.js";
import type { Bus, BusEvent } from "./bus.js";
import type { ConversationStore } from "./conversation-store.js";
import type { UserRef } from "../db/schema.js";

/** Attempts per announcement, and the wait between them (ms). */
const ATTEMPTS = 3;
const RETRY_MS = 250;

/**
 * Tells a user's peers (who share a DM or a group with them, not the whole
 * broadcast audience) that they came online or went offline. Presence calls
 * it once per change cluster-wide (presence.ts `onChange`), so a publish that
 * fails is retried for the peers not reached yet. Shutdown waits for the
 * announcements under way (`settled`).
 */
export class PresenceAnnouncer {
  private readonly inflight = new InFlight();

  constructor(
    private readonly conversations: ConversationStore,
    private readonly bus: Bus,
    private readonly log: Logger,
  ) {}

  /** Resolves once every peer was told; rejects when the last of 3 attempts, 250 ms apart, fails. */
  announce(user: UserRef, online: boolean): Promise<void> {
    return this.inflight.track(this.attempt(user, online));
  }

  /** Resolves once the announcements under way have finished. */
  settled(): Promise<void> {
    return this.inflight.settled();
  }

  private async attempt(user: UserRef, online: boolean): Promise<void> {
    const event: BusEvent = { type: "presence", username: user.username, online };
    let pending: number[] | undefined;
    for (let attempt = 1; ; attempt++) {
      try {
        pending ??= await this.conversations.peersOf(user.id);
        const peers = pending;
        const results = await Promise.allSettled(peers.map((peer) => this.bus.publish(userChannel(peer), event)));
        pending = peers.filter((_, i) => results[i].status === "rejected");
        const failure = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
        if (failure === undefined) return;
        if (attempt >= ATTEMPTS) throw failure.reason;
      } catch (err) {
        if (attempt >= ATTEMPTS) throw err;
        this.log.debug({ err, userId: user.id, attempt }, "presence announcement failed; retrying");
      }
      await sleep(RETRY_MS);
    }
  }
}
