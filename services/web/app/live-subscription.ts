// The page's one live stream: ChatService.Subscribe with a cursor per
// conversation. When it ends (the server went away, a network error, a `drain`
// frame) it opens again from the store's cursors, so the server replays what
// was missed; the store drops what it already has (conversation + seq), so
// nothing shows twice. Waits between attempts back off exponentially with
// full jitter (services/client/backoff.ts), and the store's connection state
// says when the next attempt is.
import type { ServerFrame } from "../../../gen/es/parley/chat/v1/chat_pb.js";
import { Backoff } from "../../client/backoff.js";
import { type Api, errorText, isUnauthenticated } from "./api.js";
import { keyOfMessage } from "./chat-keys.js";
import type { ChatStore } from "./store.js";
import { type Sleep, sleep as realSleep } from "./wait.js";

/** How long a typing indicator stays without a new typing frame, in ms. */
const TYPING_SHOWN_MS = 4_000;
/** After a `drain`, the next attempt waits a random time below this (ms): spreads a pod's clients over the others. */
const DRAIN_JITTER_MS = 300;

export interface LiveOptions {
  /** Called at each `ready` (first connect and every reconnect): refresh what frames alone do not carry. */
  onReady: () => void;
  /** The token no longer works: the stream is not retried. */
  onUnauthenticated: () => void;
  /** Default: 250 ms first, doubling to 8 s at most. */
  backoff?: Backoff;
  sleep?: Sleep;
  now?: () => number;
}

/** Runs until `signal` aborts (log-out, page closed). */
export async function runLiveSubscription(api: Api, store: ChatStore, options: LiveOptions, signal: AbortSignal): Promise<void> {
  const backoff = options.backoff ?? new Backoff({ initialMs: 250, maxMs: 8_000 });
  const sleep = options.sleep ?? realSleep;
  const now = options.now ?? Date.now;
  while (!signal.aborted) {
    let reason = "stream ended";
    let drained = false;
    let caughtUp = false;
    try {
      const frames = api.chat.subscribe({ cursors: store.cursors(), acceptBatch: true }, { signal });
      for await (const frame of frames) {
        const outcome = handleFrame(frame, store, options, now);
        if (outcome === "caught-up") {
          caughtUp = true;
          backoff.reset();
        }
        if (outcome === "drain") {
          drained = true;
          reason = "server is draining";
          break;
        }
      }
    } catch (err) {
      if (signal.aborted) return;
      if (isUnauthenticated(err)) return options.onUnauthenticated();
      reason = errorText(err);
    }
    if (signal.aborted) return;
    // A drain after catching up moves on at once (with jitter); a pod that drains every stream it is given backs off.
    const wait = drained && caughtUp ? Math.floor(Math.random() * DRAIN_JITTER_MS) : backoff.next();
    store.setConnection({ kind: "reconnecting", inMs: wait, reason });
    await sleep(wait, signal);
    if (!signal.aborted) store.setConnection({ kind: "connecting" });
  }
}

type Outcome = "caught-up" | "drain" | undefined;

function handleFrame(frame: ServerFrame, store: ChatStore, options: LiveOptions, now: () => number): Outcome {
  const f = frame.frame;
  switch (f.case) {
    case "ready":
      store.setConnection({ kind: "online" });
      options.onReady();
      return undefined;
    case "caughtUp":
      return "caught-up";
    case "message":
      store.addMessage(f.value, true);
      store.delivered(f.value);
      return undefined;
    case "presence":
      store.presence(f.value.username, f.value.online);
      return undefined;
    case "typing": {
      const { key } = keyOfMessage(f.value.to, f.value.from, store.me);
      store.typingIn(key, f.value.from, now() + TYPING_SHOWN_MS);
      return undefined;
    }
    case "drain":
      return "drain";
    case "batch": {
      let outcome: Outcome;
      for (const inner of f.value.frames) outcome = handleFrame(inner, store, options, now) ?? outcome;
      return outcome;
    }
    default:
      return undefined;
  }
}
