/**
 * Lets one event per key through per interval. The terminal uses it both
 * ways: typing frames it sends (one per 3 s per target) and "is typing" lines
 * it shows (one per few seconds per user), so neither floods.
 */
export class Throttle {
  private readonly last = new Map<string, number>();

  constructor(
    private readonly intervalMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** True when `key` may go now, which starts a new interval for it. */
  take(key: string): boolean {
    const at = this.now();
    const previous = this.last.get(key);
    if (previous !== undefined && at - previous < this.intervalMs) return false;
    this.last.set(key, at);
    return true;
  }

  /** Lets the next event for `key` through at once, e.g. after that user's message arrived. */
  reset(key: string): void {
    this.last.delete(key);
  }
}
