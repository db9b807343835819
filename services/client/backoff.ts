export interface BackoffOptions {
  /** The first retry waits up to this long. Default 100 ms. */
  initialMs?: number;
  /** No wait is longer than this. Default 5 s. */
  maxMs?: number;
}

/**
 * Exponential backoff with full jitter: attempt n waits a random time in
 * [0, min(max, initial * 2^n)). Jitter spreads the reconnects of the many
 * clients a drained pod lets go, so they do not land on the others at once.
 */
export class Backoff {
  private attempt = 0;
  private readonly initialMs: number;
  private readonly maxMs: number;

  constructor(
    options: BackoffOptions = {},
    private readonly random: () => number = Math.random,
  ) {
    this.initialMs = options.initialMs ?? 100;
    this.maxMs = options.maxMs ?? 5_000;
  }

  /** The wait before the next attempt; each call doubles the ceiling. */
  next(): number {
    const ceiling = Math.min(this.maxMs, this.initialMs * 2 ** this.attempt);
    this.attempt = Math.min(this.attempt + 1, 30);
    return Math.floor(this.random() * ceiling);
  }

  /** After a connection that worked, start small again. */
  reset(): void {
    this.attempt = 0;
  }
}
