// Reading settings from environment variables, for every config loader
// (lib/config.ts, controller/config.ts). A reader never throws while it reads:
// each bad value is noted and its default used, so that the loader can report
// every problem of a deployment at once.

/** Environment variables by name, as `process.env` holds them. */
export type Env = Record<string, string | undefined>;

/** Every problem an environment had, in reading order; the message lists them one a line. */
export class EnvError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join("\n  - ")}`);
    this.name = "EnvError";
  }
}

const TRUE = ["true", "1", "yes"];
const FALSE = ["false", "0", "no"];

/**
 * Typed reads of one environment. A value is trimmed, and a blank one counts
 * as unset (its default applies). A bad value adds a problem that names the
 * variable and, except for URLs (which may hold a password), quotes the value;
 * the read then returns the default.
 */
export class EnvReader {
  /** The problems found so far, in reading order. */
  readonly problems: string[] = [];

  constructor(private readonly env: Env) {}

  /** The trimmed value; undefined when unset or blank. */
  raw(name: string): string | undefined {
    const value = this.env[name]?.trim();
    return value === "" ? undefined : value;
  }

  /** Notes a problem found outside the reads, e.g. between two settings. */
  problem(message: string): void {
    this.problems.push(message);
  }

  /** Any text; `fallback` when unset. */
  string(name: string, fallback: string): string {
    return this.raw(name) ?? fallback;
  }

  /** Any text that must be set: a problem says `${name} is required: ${why}`; undefined then. */
  required(name: string, why: string): string | undefined {
    const value = this.raw(name);
    if (value === undefined) this.problem(`${name} is required: ${why}`);
    return value;
  }

  /** Text that must match `pattern` (the default too); `what` completes "must be …". Returns the value even when it does not. */
  matching(name: string, fallback: string, pattern: RegExp, what: string): string {
    const value = this.raw(name) ?? fallback;
    if (!pattern.test(value)) this.problem(`${name} must be ${what}, got "${value}"`);
    return value;
  }

  /** A whole decimal number from `min` to `max` inclusive; `fallback` when unset or bad. */
  int(name: string, fallback: number, min: number, max: number): number {
    const value = this.raw(name);
    if (value === undefined) return fallback;
    const parsed = Number(value);
    if (!/^-?\d+$/.test(value) || parsed < min || parsed > max) {
      this.problem(`${name} must be an integer from ${min} to ${max}, got "${value}"`);
      return fallback;
    }
    return parsed;
  }

  /** One of `allowed`, exactly (case counts); `fallback` when unset or bad. */
  oneOf<T extends string>(name: string, allowed: readonly T[], fallback: T): T {
    const value = this.raw(name);
    if (value === undefined) return fallback;
    if (!(allowed as readonly string[]).includes(value)) {
      this.problem(`${name} must be one of ${allowed.join(", ")}, got "${value}"`);
      return fallback;
    }
    return value as T;
  }

  /** true, 1 or yes; false, 0 or no; in any case. `fallback` when unset or bad. */
  boolean(name: string, fallback: boolean): boolean {
    const value = this.raw(name);
    if (value === undefined) return fallback;
    if (TRUE.includes(value.toLowerCase())) return true;
    if (FALSE.includes(value.toLowerCase())) return false;
    this.problem(`${name} must be true or false, got "${value}"`);
    return fallback;
  }

  /**
   * A URL whose protocol is one of `protocols` (with the colon: "redis:");
   * undefined when unset or bad. The problem does not quote the value.
   */
  url(name: string, protocols: readonly string[]): string | undefined {
    const value = this.raw(name);
    if (value === undefined) return undefined;
    let protocol: string | undefined;
    try {
      protocol = new URL(value).protocol;
    } catch {
      protocol = undefined;
    }
    if (protocol === undefined || !protocols.includes(protocol)) {
      this.problem(`${name} must be a ${protocols.map((p) => `${p}//`).join(" or ")} URL`);
      return undefined;
    }
    return value;
  }

  /**
   * A comma list of `allowed` names, spaces allowed, duplicates dropped, in
   * the order given; a copy of `fallback` when unset, empty or naming another.
   */
  list<T extends string>(name: string, allowed: readonly T[], fallback: readonly T[]): T[] {
    const value = this.raw(name);
    if (value === undefined) return [...fallback];
    const names = value
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean);
    const unknown = names.filter((s) => !(allowed as readonly string[]).includes(s));
    if (names.length === 0 || unknown.length > 0) {
      this.problem(`${name} must be a comma list of ${allowed.join(", ")}, got "${value}"`);
      return [...fallback];
    }
    return [...new Set(names)] as T[];
  }

  /** Throws `toError(problems)` (an EnvError subclass, say) when any problem was found. */
  check(toError: (problems: string[]) => Error): void {
    if (this.problems.length > 0) throw toError([...this.problems]);
  }
}
