import test from "ava";
import { AppError } from "../lib/app-error.js";
import { streamEndReason } from "./stream-end-reason.js";

// test/metrics.test.ts drives the client, drain, recycle, revoked and bus_gap ends through real servers; the session's
// expiry (SESSION_TTL_SECONDS is at least a minute) and the fallbacks are checked here, on the statuses the code ends with.
const ended = (kind: ConstructorParameters<typeof AppError>[0], message: string) => ({ error: new AppError(kind, message) });

test("each way the server ends a stream has its reason; anything else is an error", (t) => {
  t.is(streamEndReason(ended("unauthenticated", "session expired")), "expired");
  t.is(streamEndReason(ended("unauthenticated", "session revoked")), "revoked");
  t.is(streamEndReason(ended("unauthenticated", "session revoked or expired")), "revoked", "the sweep cannot tell; revoked is the likelier");
  t.is(streamEndReason(ended("resource_exhausted", "consumer too slow: resume from your cursors")), "slow_consumer");
  t.is(streamEndReason(ended("unavailable", "this pod is draining, reconnect elsewhere")), "drain");
  // A token refused when the stream opens (auth/sessions.ts) is a failed call, not a session that ended under it.
  t.is(streamEndReason(ended("unauthenticated", "invalid, expired or revoked token")), "error");
  t.is(streamEndReason(ended("unauthenticated", "token expired")), "error");
  t.is(streamEndReason(ended("unavailable", "could not load missed messages, resume from your cursors")), "error");
  t.is(streamEndReason(ended("invalid_argument", "malformed hello")), "error");
  t.is(streamEndReason({ error: new Error("boom") }), "error");
  t.is(streamEndReason({ byClient: true }), "client");
  t.is(streamEndReason({}), "client", "an OK end follows the client's half-close");
});
