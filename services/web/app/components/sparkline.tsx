// A small line chart of recent values, drawn as SVG: no axes, a baseline at
// zero, the line scaled to the highest value shown (or `floor`, whichever is
// higher, so that a flat 0.1 does not fill the box). Points without a value
// (undefined) break the line. Until `spanMs` of points have been seen, the
// width stands for what there is (at least `minSpanMs`), so a page opened a
// few seconds ago already draws a line rather than a tick at the right edge.

export interface SparklineProps {
  /** What the chart shows, for screen readers: "Online users, last 2 minutes". */
  label: string;
  /** Epoch ms and value, oldest first. */
  points: readonly { at: number; value: number | undefined }[];
  /** The longest time span the width stands for, in ms; the newest point sits at the right edge. */
  spanMs: number;
  /** The shortest span the width stands for, in ms. Default 10 s. */
  minSpanMs?: number;
  /** The smallest top of the scale. Default 1. */
  floor?: number;
  width?: number;
  height?: number;
}

export function Sparkline({ label, points, spanMs, minSpanMs = 10_000, floor = 1, width = 220, height = 48 }: SparklineProps) {
  const newest = points.at(-1)?.at ?? 0;
  const oldest = points[0]?.at ?? newest;
  const span = Math.min(spanMs, Math.max(minSpanMs, newest - oldest));
  const top = Math.max(floor, ...points.map((p) => p.value ?? 0));
  const pad = 2;
  const x = (at: number) => width - ((newest - at) / span) * width;
  const y = (value: number) => height - pad - (value / top) * (height - 2 * pad);
  const runs: string[][] = [[]];
  for (const p of points) {
    if (p.value === undefined) runs.push([]);
    else runs.at(-1)?.push(`${x(p.at).toFixed(1)},${y(p.value).toFixed(1)}`);
  }
  return (
    <svg class="sparkline" role="img" aria-label={label} viewBox={`0 0 ${width} ${height}`} preserveAspectRatio="none">
      <line x1="0" x2={width} y1={height - pad} y2={height - pad} class="baseline" />
      {runs
        .filter((run) => run.length > 0)
        .map((run) => (
          <polyline key={run[0]} points={run.join(" ")} class="line" />
        ))}
      {runs.flat().length === 1 && <circle cx={runs.flat()[0]?.split(",")[0]} cy={runs.flat()[0]?.split(",")[1]} r="2" class="dot" />}
    </svg>
  );
}
