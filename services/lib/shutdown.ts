import type { Logger } from "./logger.js";

/** One step of the shutdown, run in order; a failing step is logged and the next one still runs. */
export interface ShutdownStep {
  name: string;
  run(): Promise<void> | void;
}

/**
 * Builds the one shutdown routine of a process: ordered, idempotent (a second
 * call returns the first call's promise) and time-bounded (past `timeoutMs`
 * the remaining steps are abandoned and the promise resolves anyway).
 */
export function createShutdown(log: Logger, timeoutMs: number, steps: ShutdownStep[]): () => Promise<void> {
  let running: Promise<void> | undefined;
  return () => {
    running ??= (async () => {
      const started = Date.now();
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<"timeout">((resolve) => {
        timer = setTimeout(() => resolve("timeout"), timeoutMs);
        timer.unref();
      });
      const work = (async () => {
        for (const step of steps) {
          try {
            await step.run();
            log.info({ step: step.name, elapsedMs: Date.now() - started }, "shutdown step done");
          } catch (err) {
            log.error({ err, step: step.name }, "shutdown step failed");
          }
        }
      })();
      if ((await Promise.race([work, deadline])) === "timeout") {
        log.error({ timeoutMs }, "shutdown deadline passed; giving up on the remaining steps");
      }
      clearTimeout(timer);
    })();
    return running;
  };
}
