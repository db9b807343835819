// Which repeats of a failure get a log line. The controller ticks every few
// seconds; while the scaler or the API server is down, every tick fails the
// same way, and a line per tick buries everything else in the log. So the
// first failure is logged, then the repeats are logged less and less often,
// and the recovery is logged once, with how long it took.
import type { Clock } from "../lib/clock.js";

/** What to add to a failure's log line; `repeated` is absent on the first one. */
export interface FailureLine {
  /** How many times in a row this call has now failed, this one included. */
  repeated?: number;
}

/** What to log, once, when the call works again. */
export interface RecoveryLine {
  /** How many times in a row it had failed. */
  failures: number;
  /** From the first of those failures to now, in seconds. */
  downSeconds: number;
}

/** Default longest quiet stretch while a failure repeats: a line at least once a minute. */
const DEFAULT_MAX_QUIET_MS = 60_000;

/**
 * One call's failures in a row (one instance per call: the metric read, the
 * scale read and write). The first failure is logged; then the 3rd, 7th,
 * 15th, … (after 2, 4, 8, … repeats: the gap doubles), and in any case once
 * `maxQuietMs` has passed since the last line. A failure of a different kind
 * (another gRPC or HTTP status, another message) is logged at once and
 * restarts the doubling. Pure apart from `clock.now()`.
 */
export class LogBackoff {
  private failures = 0;
  private sameKind = 0;
  private kind = "";
  private firstAt = 0;
  private lastLineAt = 0;

  constructor(
    private readonly clock: Pick<Clock, "now">,
    private readonly maxQuietMs = DEFAULT_MAX_QUIET_MS,
  ) {}

  /** Records a failure; returns the fields for its log line, or undefined when this one stays quiet. */
  failed(err: unknown): FailureLine | undefined {
    const now = this.clock.now();
    const kind = errorKind(err);
    this.failures += 1;
    if (this.failures === 1) this.firstAt = now;
    if (kind !== this.kind) {
      this.kind = kind;
      this.sameKind = 0;
    }
    this.sameKind += 1;
    const due = isOneLessThanPowerOfTwo(this.sameKind) || now - this.lastLineAt >= this.maxQuietMs;
    if (!due) return undefined;
    this.lastLineAt = now;
    return this.failures === 1 ? {} : { repeated: this.failures };
  }

  /** Records a success; returns the recovery line the first time after failures, else undefined. */
  succeeded(): RecoveryLine | undefined {
    if (this.failures === 0) return undefined;
    const line = { failures: this.failures, downSeconds: Math.round((this.clock.now() - this.firstAt) / 100) / 10 };
    this.failures = 0;
    this.sameKind = 0;
    this.kind = "";
    return line;
  }
}

/** 1, 3, 7, 15, …: the counts at which a repeating failure is logged. */
function isOneLessThanPowerOfTwo(n: number): boolean {
  return (n & (n + 1)) === 0;
}

/**
 * What makes two failures "the same": the error's class and its gRPC or HTTP
 * status when it has one, else its message with the numbers masked (ports,
 * durations and timestamps differ from one attempt to the next).
 */
function errorKind(err: unknown): string {
  if (!(err instanceof Error)) return String(err).replace(/\d+/g, "#");
  const { code, status } = err as { code?: unknown; status?: unknown };
  const detail = code ?? status;
  return `${err.name}:${detail !== undefined ? String(detail) : err.message.replace(/\d+/g, "#")}`;
}
