import type { Bus, BusEvent, BusHandler } from "./bus.js";

/**
 * The embedded mode's bus: one process, so publishing is a local call. Events
 * are delivered on a later tick, as a broker would, never inside `publish`.
 */
export class MemoryBus implements Bus {
  private readonly handlers: BusHandler[] = [];
  private readonly subscribed = new Set<string>();

  async publish(channel: string, event: BusEvent): Promise<void> {
    if (!this.subscribed.has(channel)) return;
    queueMicrotask(() => {
      for (const handler of this.handlers) handler(channel, event);
    });
  }

  async subscribe(channels: string[]): Promise<void> {
    for (const channel of channels) this.subscribed.add(channel);
  }

  async unsubscribe(channels: string[]): Promise<void> {
    for (const channel of channels) this.subscribed.delete(channel);
  }

  onEvent(handler: BusHandler): void {
    this.handlers.push(handler);
  }

  onGap(_handler: () => void): void {
    // Nothing sits between publisher and subscriber, so nothing can be missed.
  }

  async close(): Promise<void> {
    this.subscribed.clear();
  }
}
