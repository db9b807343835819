// How the dashboard words its numbers: short, with units, and "—" for none.

export const NONE = "—";

/** A latency given in seconds, in ms below 1 s: "3.2 ms", "1.25 s". */
export function formatSeconds(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds)) return NONE;
  if (seconds < 1) return `${(seconds * 1000).toFixed(seconds < 0.01 ? 2 : 1)} ms`;
  return `${seconds.toFixed(2)} s`;
}

/** A rate: "0", "0.4", "12.3", "1,240". */
export function formatRate(perSecond: number): string {
  if (perSecond === 0) return "0";
  if (perSecond < 100) return perSecond.toFixed(1);
  return Math.round(perSecond).toLocaleString("en");
}

/** Bytes in binary megabytes: "86 MiB". */
export function formatBytes(bytes: number): string {
  return bytes > 0 ? `${Math.round(bytes / 2 ** 20)} MiB` : NONE;
}

/** How long ago `at` was, seen from `now` (epoch ms): "0.4 s ago", "3 min ago". */
export function formatAgo(at: number, now: number): string {
  const seconds = Math.max(0, (now - at) / 1000);
  if (seconds < 10) return `${seconds.toFixed(1)} s ago`;
  if (seconds < 120) return `${Math.round(seconds)} s ago`;
  return `${Math.round(seconds / 60)} min ago`;
}

/** A clock time for a list: "14:03:27". */
export function formatTime(at: number): string {
  return new Date(at).toLocaleTimeString("en-GB", { hour12: false });
}
