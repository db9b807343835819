import type { Presence } from "./presence.js";

/** The embedded mode's presence: one process holds every stream. */
export class MemoryPresence implements Presence {
  private readonly streams = new Map<string, Set<string>>();

  async add(user: { username: string }, streamId: string): Promise<boolean> {
    let set = this.streams.get(user.username);
    const cameOnline = set === undefined;
    if (set === undefined) this.streams.set(user.username, (set = new Set()));
    set.add(streamId);
    return cameOnline;
  }

  async remove(user: { username: string }, streamId: string): Promise<boolean> {
    const set = this.streams.get(user.username);
    if (set === undefined || !set.delete(streamId)) return false;
    if (set.size > 0) return false;
    this.streams.delete(user.username);
    return true;
  }

  async onlineUsernames(): Promise<string[]> {
    return [...this.streams.keys()].sort();
  }

  async onlineCount(): Promise<number> {
    return this.streams.size;
  }

  onExpired(): void {
    // One process: its streams cannot outlive it.
  }

  async close(): Promise<void> {
    this.streams.clear();
  }
}
