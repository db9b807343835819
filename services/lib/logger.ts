import { pino, type DestinationStream, type Logger } from "pino";
import PinoPretty from "pino-pretty";

export type { Logger };

/** Paths that never reach a log line, whatever object they sit in. */
const REDACT = ["password", "token", "authorization", "*.password", "*.token", "*.authorization", "*.*.password", "*.*.token", "*.*.authorization"];

/**
 * LOG_FORMAT: `json` (one JSON object a line, for collectors), `pretty`
 * (coloured lines for a person), or `auto` (the default): pretty when stdout is
 * a terminal, JSON otherwise, so a pod's log stays machine-readable and
 * `npm start` in a terminal stays readable.
 */
export const LOG_FORMATS = ["auto", "json", "pretty"] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** `auto` made concrete for an output that is (or is not) a terminal. */
export function resolveLogFormat(format: LogFormat, isTerminal: boolean): "json" | "pretty" {
  if (format !== "auto") return format;
  return isTerminal ? "pretty" : "json";
}

/**
 * How a JSON log line reads on a terminal: local time, level, `[pod]`,
 * `component:`, the message, then the other fields on the same line (an error's
 * stack on the lines below). Shared by the logger and by `npm run cluster`,
 * which pretty-prints its pods' JSON lines the same way.
 */
export function prettyOptions(colorize: boolean): PinoPretty.PrettyOptions {
  return {
    colorize,
    translateTime: "SYS:HH:MM:ss.l",
    ignore: "pid,hostname,pod,component",
    messageFormat: "{if pod}[{pod}] {end}{if component}{component}: {end}{msg}",
    singleLine: true,
  };
}

/** How and where the lines go. */
export interface LogOutput {
  /** Default `auto`, LOG_FORMAT's default. */
  format?: LogFormat;
  /** Default stdout (file descriptor 1, written synchronously); its `isTTY` decides `auto`. */
  destination?: DestinationStream & { isTTY?: boolean };
}

/**
 * The process logger: tagged with the pod, secrets redacted (pino's `redact`
 * runs before either format sees the object, so both are covered), written as
 * JSON lines or, for a person at a terminal, as pretty lines.
 *
 * Pretty lines are formatted on the main thread by a synchronous pino-pretty
 * stream rather than by pino's `transport` (a worker thread): every line is on
 * the terminal before the call returns, so the `log.fatal(…); process.exit(1)`
 * of the entry points loses nothing and shutdown needs no flush. The cost,
 * formatting on the event loop, is only paid on a terminal, at a person's
 * volume of lines; pods log JSON.
 */
export function createLogger(level: string, pod: string, output: LogOutput = {}): Logger {
  const isTerminal = (output.destination ?? process.stdout).isTTY === true;
  const format = resolveLogFormat(output.format ?? "auto", isTerminal);
  const options = {
    level,
    base: { pod },
    redact: { paths: REDACT, censor: "[redacted]" },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  if (format === "json") return pino(options, output.destination ?? pino.destination({ dest: 1, sync: true }));
  const colorize = isTerminal && PinoPretty.isColorSupported;
  return pino(options, PinoPretty({ ...prettyOptions(colorize), destination: output.destination ?? 1, sync: true }));
}
