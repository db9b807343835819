// Steady traffic for fault tests: a sender that keeps going while a pod,
// Redis or Postgres goes away and comes back.
import { setTimeout as sleep } from "node:timers/promises";
import type { ServiceError } from "@grpc/grpc-js";
import type { Message } from "../../gen/parley/chat/v1/chat.js";

/** A send the server acknowledged; `at` is when the send was started. */
export interface AckedSend {
  at: number;
  message: Message;
}

/** A send the server refused, with what is needed to send it again under the same id. */
export interface RefusedSend {
  at: number;
  code: number;
  details: string;
  clientMsgId: string;
  body: string;
}

export interface SendLoopOptions {
  /** How long to wait after a refusal before the next send (default 50 ms). */
  pauseAfterRefusalMs?: number;
}

/**
 * Sends one message at a time, each after the previous one is answered, until
 * stopped, and records every acknowledgement and every refusal with when the
 * send started. Fault tests run one through an outage and then check that each
 * acknowledged send is stored once and in order (`name-i` ids make a loop's
 * messages easy to find), and that refusals carried the expected code.
 */
export class SendLoop {
  readonly acked: AckedSend[] = [];
  readonly refused: RefusedSend[] = [];
  readonly done: Promise<void>;
  private running = true;

  constructor(
    readonly name: string,
    send: (body: string, clientMsgId: string) => Promise<Message>,
    { pauseAfterRefusalMs = 50 }: SendLoopOptions = {},
  ) {
    this.done = (async () => {
      for (let i = 0; this.running; i++) {
        const at = Date.now();
        const [body, clientMsgId] = [`${name} ${i}`, `${name}-${i}`];
        try {
          this.acked.push({ at, message: await send(body, clientMsgId) });
        } catch (err) {
          const e = err as ServiceError;
          this.refused.push({ at, code: e.code, details: e.details ?? e.message, clientMsgId, body });
          await sleep(pauseAfterRefusalMs);
        }
        await sleep(10);
      }
    })();
  }

  /** Acknowledged sends that were started at or after `time`. */
  ackedSince(time: number): number {
    return this.acked.filter((a) => a.at >= time).length;
  }

  /** Stops after the send in flight; resolves once it is answered. */
  stop(): Promise<void> {
    this.running = false;
    return this.done;
  }
}
