export interface PresenceUser {
  id: number;
  username: string;
}

/** Who is online across the cluster: a user is online while they have a live stream on any live pod. */
export interface Presence {
  /** Records a stream; true when the user just came online (their first stream anywhere). */
  add(user: PresenceUser, streamId: string): Promise<boolean>;
  /** Forgets a stream; true when the user just went offline (their last stream anywhere). */
  remove(user: PresenceUser, streamId: string): Promise<boolean>;
  onlineUsernames(): Promise<string[]>;
  /** Distinct users online; cheap, because the scaler polls it. */
  onlineCount(): Promise<number>;
  /** Users who went offline because the pod holding their streams died. */
  onExpired(listener: (user: PresenceUser) => void): void;
  /** Removes this pod's streams (the drain) and stops any heartbeat. */
  close(): Promise<void>;
}
