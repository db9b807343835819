import type { UserRef } from "../db/schema.js";

/**
 * Told of every change of a user's state, exactly once cluster-wide: whichever
 * pod claimed the change runs its listeners. A returned promise is awaited
 * (and its failure logged) before the call that claimed the change resolves.
 */
export type PresenceListener = (user: UserRef, online: boolean) => void | Promise<void>;

/**
 * How long a user whose last stream closed normally stays announced online, so
 * that one who only moves (a drain, a recycled connection, a quick reconnect)
 * is not announced offline and online again. Default for PRESENCE_GRACE_SECONDS.
 */
export const DEFAULT_OFFLINE_GRACE_MS = 5_000;

/**
 * Who is online across the cluster: a user is online while they have a live
 * stream on any live pod. Besides that truth, presence keeps what peers were
 * last told ("announced") and reconciles the two: online but not announced is
 * announced online at once; announced but offline is announced offline after
 * the grace when the last stream closed normally, and at once when the pod
 * holding the streams died or restarted. Each change is claimed atomically, so
 * it reaches `onChange` listeners on exactly one pod.
 */
export interface Presence {
  /** Records a stream; resolves after the listeners of any change it claimed (the user came online). */
  add(user: UserRef, streamId: string): Promise<void>;
  /** Forgets a stream; a user left with none is announced offline once the grace has passed without a new one. */
  remove(user: UserRef, streamId: string): Promise<void>;
  /**
   * Usernames online anywhere, sorted, as peers were told: a user whose last
   * stream closed stays listed through the grace, so that this list and the
   * `presence` frames never disagree while a user moves between streams.
   */
  onlineUsernames(): Promise<string[]>;
  /** Distinct users online; cheap, because the scaler polls it. */
  onlineCount(): Promise<number>;
  /**
   * Registers the listener of every change, whatever its cause (a stream
   * opened or closed, a lease expired, a paused pod that came back, a pod
   * restarted under the same name). A process claims changes only once it has
   * a listener, so one that hosts no chat never swallows an announcement.
   */
  onChange(listener: PresenceListener): void;
  /** Resolves once the reconcile under way, if any, has finished and its changes were announced (for tests). */
  idle(): Promise<void>;
  /** Removes this pod's streams (the drain: their users get the grace) and stops any timer. */
  close(): Promise<void>;
}

/** Runs every listener for one claimed change and waits for them; a failure is logged, never thrown. */
export async function notifyListeners(
  listeners: readonly PresenceListener[],
  user: UserRef,
  online: boolean,
  log: { warn(obj: object, msg: string): void },
): Promise<void> {
  await Promise.all(
    listeners.map(async (listener) => {
      try {
        await listener(user, online);
      } catch (err) {
        log.warn({ err, username: user.username, online }, "presence change could not be announced");
      }
    }),
  );
}
