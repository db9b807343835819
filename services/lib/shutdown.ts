import { type Clock, systemClock } from "./clock.js";
import type { Logger } from "./logger.js";

/** One step of the shutdown, run in order; a failing step is logged and the next one still runs. */
export interface ShutdownStep {
  name: string;
  run(): Promise<void> | void;
}

/**
 * Builds the one shutdown routine of a process: ordered, idempotent (a second
 * call returns the first call's promise) and time-bounded: past `timeoutMs`
 * the promise resolves, and the steps not started yet never start (the step
 * under way cannot be stopped, only abandoned).
 */
export function createShutdown(log: Logger, timeoutMs: number, steps: ShutdownStep[], clock: Clock = systemClock): () => Promise<void> {
  let running: Promise<void> | undefined;
  return () => {
    running ??= (async () => {
      const started = clock.now();
      let expired = false;
      let timer: unknown;
      const deadline = new Promise<"timeout">((resolve) => {
        timer = clock.setTimeout(() => {
          expired = true;
          resolve("timeout");
        }, timeoutMs);
      });
      const work = (async () => {
        for (const step of steps) {
          if (expired) return;
          try {
            await step.run();
            log.info({ step: step.name, elapsedMs: clock.now() - started }, "shutdown step done");
          } catch (err) {
            log.error({ err, step: step.name }, "shutdown step failed");
          }
        }
      })();
      if ((await Promise.race([work, deadline])) === "timeout") {
        log.error({ timeoutMs, elapsedMs: clock.now() - started }, "shutdown deadline passed; giving up on the remaining steps");
      }
      clock.clearTimeout(timer);
    })();
    return running;
  };
}
