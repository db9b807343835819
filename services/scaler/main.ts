import { ExternalScalerService } from "../../gen/externalscaler/externalscaler.js";
import type { Presence } from "../chat/presence.js";
import { tolerantRequests } from "../lib/grpc-calls.js";
import type { HostedService } from "../lib/grpc-server.js";
import type { Logger } from "../lib/logger.js";
import { OnlineUsers } from "./online-users.js";
import { createScalerHandler } from "./scaler-handler.js";

export interface Scaler {
  service: HostedService;
  /** Ends StreamIsActive calls, so that the drain is not held up by them. */
  endStreams(): void;
}

/** KEDA's `externalscaler.ExternalScaler`, reading presence. */
export function createScaler(presence: Presence, log: Logger): Scaler {
  const handler = createScalerHandler(new OnlineUsers(presence, log), log);
  return {
    service: {
      fullName: "externalscaler.ExternalScaler",
      definition: tolerantRequests(ExternalScalerService),
      implementation: handler,
    },
    endStreams: () => handler.endStreams(),
  };
}
