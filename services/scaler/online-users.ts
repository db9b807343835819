import type { Presence } from "../chat/presence.js";
import type { Logger } from "../lib/logger.js";

/** How often watchers re-read the count. KEDA's own polling is 30 s by default; pushes make this the lag. */
const WATCH_INTERVAL_MS = 1_000;

/** The scaler's one metric: distinct users online across the cluster, read from presence. */
export class OnlineUsers {
  constructor(
    private readonly presence: Presence,
    private readonly log: Logger,
  ) {}

  count(): Promise<number> {
    return this.presence.onlineCount();
  }

  /**
   * Calls `onChange` with the first count and then with every count that
   * differs from the last one, until `signal` aborts. A failed read is logged
   * and retried; it does not end the watch.
   */
  watch(signal: AbortSignal, onChange: (count: number) => void): void {
    let last: number | undefined;
    const read = async () => {
      try {
        const count = await this.count();
        if (!signal.aborted && count !== last) {
          last = count;
          onChange(count);
        }
      } catch (err) {
        this.log.warn({ err }, "could not read the online count");
      }
    };
    const timer = setInterval(() => void read(), WATCH_INTERVAL_MS);
    timer.unref();
    signal.addEventListener("abort", () => clearInterval(timer), { once: true });
    void read();
  }
}
