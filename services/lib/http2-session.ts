import type { Http2Session } from "node:http2";

/**
 * grpc-js recycles a connection at `grpc.max_connection_age_ms` by sending
 * GOAWAY and calling `session.close()`, then cuts what is left after the
 * grace period, and it tells the application nothing. Long-lived streams
 * must hear of it first so that they can send `drain` (design.md, guarantee
 * 6). grpc-js exposes no hook, so this reaches the call's HTTP/2 session
 * through grpc-js internals (checked against 1.14) and wraps its `close`
 * once. If the internals ever change shape, it does nothing: streams are
 * then cut at the end of the grace period and their clients resume.
 */
const listeners = new WeakMap<Http2Session, Set<() => void>>();

interface InternalCall {
  call?: InternalLayer;
}
interface InternalLayer {
  stream?: { session?: Http2Session };
  nextCall?: InternalLayer;
}

/** The HTTP/2 session of a grpc-js server call, or undefined. */
function sessionOf(call: unknown): Http2Session | undefined {
  let layer = (call as InternalCall).call;
  for (let depth = 0; layer && depth < 10; depth++) {
    const session = layer.stream?.session;
    if (session) return session;
    layer = layer.nextCall;
  }
  return undefined;
}

/**
 * Calls `listener` once when the server starts closing the call's connection
 * (GOAWAY for max connection age, or server shutdown). Returns the function
 * that stops listening (a no-op when the session cannot be found).
 */
export function onConnectionClosing(call: unknown, listener: () => void): () => void {
  const session = sessionOf(call);
  if (session === undefined || typeof session.close !== "function") return () => undefined;
  let set = listeners.get(session);
  if (set === undefined) {
    const own = new Set<() => void>();
    set = own;
    listeners.set(session, own);
    const close = session.close.bind(session);
    session.close = ((callback?: () => void) => {
      for (const fn of [...own]) fn();
      own.clear();
      return close(callback);
    }) as Http2Session["close"];
    session.once("close", () => own.clear());
  }
  if (session.closed) {
    listener();
    return () => undefined;
  }
  set.add(listener);
  const own = set;
  return () => void own.delete(listener);
}
