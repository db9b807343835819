// How `npm run cluster` shows its pods' logs. The pods write to a pipe, not a
// terminal, so they log JSON (LOG_FORMAT=json is set for them); this relay
// turns each JSON line into the same pretty line a pod would print on a
// terminal, when the script's own output is one. Lines that are not JSON pass
// through unchanged.
import { createInterface } from "node:readline";
import type { Readable } from "node:stream";
import PinoPretty from "pino-pretty";
import { prettyOptions } from "../services/lib/logger.js";

/** Where relayed lines go: stdout in the script, a collecting stream in tests. */
interface LineSink {
  write(text: string): unknown;
  isTTY?: boolean;
}

/**
 * Copies `source` to `sink` line by line, pretty-printed when `format` is
 * `pretty` (coloured when the sink is a terminal), unchanged when `json`.
 * Resolves when `source` ends.
 */
export async function relayLogLines(source: Readable, sink: LineSink, format: "json" | "pretty"): Promise<void> {
  const pretty = format === "pretty" ? PinoPretty.prettyFactory(prettyOptions(sink.isTTY === true && PinoPretty.isColorSupported)) : undefined;
  for await (const line of createInterface({ input: source, crlfDelay: Number.POSITIVE_INFINITY })) {
    sink.write(pretty ? pretty(line) : `${line}\n`);
  }
}
