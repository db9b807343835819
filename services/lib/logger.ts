import { pino, type Logger } from "pino";

export type { Logger };

/** Paths that never reach a log line, whatever object they sit in. */
const REDACT = ["password", "token", "authorization", "*.password", "*.token", "*.authorization", "*.*.password", "*.*.token", "*.*.authorization"];

/** The process logger: JSON lines on stdout, secrets redacted, tagged with the pod. */
export function createLogger(level: string, pod: string): Logger {
  return pino({
    level,
    base: { pod },
    redact: { paths: REDACT, censor: "[redacted]" },
    timestamp: pino.stdTimeFunctions.isoTime,
  });
}
