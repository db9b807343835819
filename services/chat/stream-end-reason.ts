import { AppError, type ErrorKind } from "../lib/app-error.js";
import type { CallEnd } from "./stream-call.js";

/** Why a Connect or Subscribe stream ended, as `parley_streams_ended_total{reason}` says it: a fixed set. */
export const STREAM_END_REASONS = ["client", "drain", "recycle", "revoked", "expired", "slow_consumer", "bus_gap", "error"] as const;
export type StreamEndReason = (typeof STREAM_END_REASONS)[number];

/**
 * The ways the server ends a stream that are not failures, by the status kind
 * and the status text each one is ended with, first match wins:
 * stream-call.ts (the drain, a call refused while draining, a recycled
 * connection), hub.ts (a bus gap), main.ts and stream-reconciler.ts (a
 * revoked or lapsed session), stream-opener.ts (the session's expiry),
 * chat-stream.ts (a slow consumer, the only resource_exhausted).
 */
const RULES: { kind: ErrorKind; text?: string; reason: StreamEndReason }[] = [
  { kind: "resource_exhausted", reason: "slow_consumer" },
  { kind: "unavailable", text: "connection recycled", reason: "recycle" },
  { kind: "unavailable", text: "live events may have been missed", reason: "bus_gap" },
  { kind: "unavailable", text: "draining", reason: "drain" },
  { kind: "unavailable", text: "shutting down", reason: "drain" },
  { kind: "unauthenticated", text: "session revoked", reason: "revoked" },
  { kind: "unauthenticated", text: "session expired", reason: "expired" },
];

/**
 * The reason label of a stream's end, from its call's `signal.reason`: the
 * client's cancel or half-close is `client`, an end the server chose is
 * named by RULES, and anything else (a failed token check, a database down
 * while the stream opened, a malformed frame) is `error`.
 */
export function streamEndReason(end: CallEnd | undefined): StreamEndReason {
  if (end === undefined || end.byClient || end.error === undefined) return "client";
  const { error } = end;
  if (!(error instanceof AppError)) return "error";
  for (const rule of RULES) {
    if (rule.kind === error.kind && (rule.text === undefined || error.message.includes(rule.text))) return rule.reason;
  }
  return "error";
}
