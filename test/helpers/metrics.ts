// Prometheus' text exposition format as a test reads it: scrape /metrics over
// real HTTP and look samples up by name and labels.
// (https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format)

/** One sample line: `name{label="value",...} value`. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** What one scrape returned. */
export class Scrape {
  constructor(
    readonly samples: Sample[],
    readonly contentType: string,
  ) {}

  /**
   * The sum of the samples named `name` whose labels include `labels` (all of
   * a counter's series when `labels` is empty); undefined when there is none.
   */
  value(name: string, labels: Record<string, string> = {}): number | undefined {
    const matching = this.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
    return matching.length === 0 ? undefined : matching.reduce((sum, s) => sum + s.value, 0);
  }

  /** Like `value`, 0 when there is no such series. */
  count(name: string, labels: Record<string, string> = {}): number {
    return this.value(name, labels) ?? 0;
  }

  /** Every label value of every sample. */
  labelValues(): string[] {
    return this.samples.flatMap((s) => Object.values(s.labels));
  }
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** Parses the text format; throws on a line it cannot read, so a malformed exposition fails the test. */
export function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    if (line.trim() === "" || line.startsWith("#")) continue;
    const match = LINE.exec(line);
    if (match === null) throw new Error(`not a sample line: ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    for (const [, key, raw] of (match[2] ?? "").matchAll(LABEL)) {
      labels[key] = raw.replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c));
    }
    samples.push({ name: match[1], labels, value: Number(match[3]) });
  }
  return samples;
}

/** GETs `url` (a /metrics endpoint); rejects unless it answers 200. */
export async function scrape(url: string): Promise<Scrape> {
  const response = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  const body = await response.text();
  if (response.status !== 200) throw new Error(`${url} answered ${response.status}: ${body}`);
  return new Scrape(parseExposition(body), response.headers.get("content-type") ?? "");
}

/** Scrapes `url` until `check` holds (metrics that move asynchronously); rejects with the last value after `timeoutMs`. */
export async function scrapeUntil(url: string, check: (scrape: Scrape) => boolean, what: string, timeoutMs = 10_000): Promise<Scrape> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const last = await scrape(url);
    if (check(last)) return last;
    if (Date.now() > deadline) {
      const parley = last.samples.filter((s) => s.name.startsWith("parley_") && !s.name.includes("_bucket"));
      throw new Error(`timed out waiting for ${what}; parley_* samples: ${JSON.stringify(parley)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
