// Latency quantiles from Prometheus histogram buckets, the way Prometheus
// computes them: bucket increases are summed across pods first, then one
// quantile is interpolated from the sum (histogram_quantile over
// sum(rate(x_bucket[w])) by (le)). Averaging per-pod quantiles would be wrong:
// a quiet pod's p99 would weigh as much as a busy one's.
// Source: prometheus/prometheus promql/quantile.go (bucketQuantile).

/**
 * A histogram's cumulative bucket counts: `counts[i]` observations were at or
 * under `bounds[i]` seconds, and `total` is the +Inf bucket (every observation).
 * Bounds are finite and ascending; counts never decrease.
 */
export interface Buckets {
  bounds: number[];
  counts: number[];
  total: number;
}

export const EMPTY_BUCKETS: Buckets = { bounds: [], counts: [], total: 0 };

/** `later - earlier`, bucket by bucket (same bounds): the observations between two samples of one histogram. */
export function bucketIncrease(later: Buckets, earlier: Buckets | undefined): Buckets {
  if (earlier === undefined || earlier.total > later.total || !sameBounds(later, earlier)) {
    // No earlier sample, or the histogram was reset: everything it holds is new (Prometheus' counter-reset rule).
    return later;
  }
  return {
    bounds: later.bounds,
    counts: later.counts.map((count, i) => count - (earlier.counts[i] ?? 0)),
    total: later.total - earlier.total,
  };
}

function sameBounds(a: Buckets, b: Buckets): boolean {
  return a.bounds.length === b.bounds.length && a.bounds.every((bound, i) => bound === b.bounds[i]);
}

/**
 * Sums histograms bucket by bucket. Pods of one version share their bounds;
 * when they do not (a rollout that changed them), the union of bounds is
 * used, and a histogram's count at a bound it lacks is its count at its next
 * lower bound: never more than it observed there.
 */
export function sumBuckets(histograms: readonly Buckets[]): Buckets {
  const bounds = [...new Set(histograms.flatMap((h) => h.bounds))].sort((a, b) => a - b);
  const counts = bounds.map((bound) => histograms.reduce((sum, h) => sum + countAtOrUnder(h, bound), 0));
  return { bounds, counts, total: histograms.reduce((sum, h) => sum + h.total, 0) };
}

function countAtOrUnder(h: Buckets, bound: number): number {
  let count = 0;
  for (let i = 0; i < h.bounds.length && (h.bounds[i] as number) <= bound; i++) count = h.counts[i] as number;
  return count;
}

/**
 * The q-quantile (0 ≤ q ≤ 1) of the observations, in the histogram's unit,
 * interpolated linearly inside the bucket where it falls (the first bucket
 * starts at 0). Undefined when there are no observations. A quantile past the
 * highest finite bound is that bound, as Prometheus answers.
 */
export function quantile(q: number, h: Buckets): number | undefined {
  if (h.total <= 0 || !(q >= 0 && q <= 1)) return undefined;
  const rank = q * h.total;
  let below = 0;
  for (let i = 0; i < h.bounds.length; i++) {
    const count = h.counts[i] as number;
    if (count >= rank && count > below) {
      const start = i === 0 ? 0 : (h.bounds[i - 1] as number);
      const end = h.bounds[i] as number;
      return start + (end - start) * ((rank - below) / (count - below));
    }
    below = count;
  }
  return h.bounds.at(-1);
}
