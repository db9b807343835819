import type { ServerWritableStream } from "@grpc/grpc-js";
import type { ExternalScalerServer, IsActiveResponse, ScaledObjectRef } from "../../gen/externalscaler/externalscaler.js";
import { DEFAULT_USERS_PER_REPLICA, ONLINE_USERS_METRIC } from "../lib/contract.js";
import { AppError } from "../lib/app-error.js";
import { logFailure, toServiceError } from "../lib/errors.js";
import { isMalformed, malformedError, unary } from "../lib/grpc-calls.js";
import type { Logger } from "../lib/logger.js";
import { quote } from "../lib/text.js";
import type { OnlineUsers } from "./online-users.js";

/** Reads `usersPerReplica` from a ScaledObject's metadata; INVALID_ARGUMENT unless it is a positive integer. */
function usersPerReplica(ref: ScaledObjectRef | undefined): number {
  const raw = ref?.scalerMetadata?.usersPerReplica;
  if (raw === undefined || raw === "") return DEFAULT_USERS_PER_REPLICA;
  const value = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(value) || value < 1) {
    throw new AppError("invalid_argument", `scalerMetadata.usersPerReplica must be a positive integer, got ${quote(raw)}`);
  }
  return value;
}

/** KEDA may prefix the metric name (e.g. "s0-online_users"); anything else is not ours. */
function checkMetricName(name: string): void {
  if (name !== "" && name !== ONLINE_USERS_METRIC && !name.endsWith(`-${ONLINE_USERS_METRIC}`)) {
    throw new AppError("invalid_argument", `unknown metric ${quote(name)}; this scaler serves "${ONLINE_USERS_METRIC}"`);
  }
}

export interface ScalerHandler extends ExternalScalerServer {
  /** Ends every StreamIsActive call: part of the drain. */
  endStreams(): void;
}

/** KEDA's external scaler contract over the cluster-wide online count. Both int and float fields are filled, as KEDA reads the float only when it is above 0. */
export function createScalerHandler(online: OnlineUsers, log: Logger): ScalerHandler {
  const handlerLog = log.child({ component: "scaler" });
  const streams = new Set<AbortController>();

  return {
    isActive: unary(handlerLog, "IsActive", async (ref) => {
      usersPerReplica(ref);
      return { result: (await online.count()) > 0 };
    }),

    getMetricSpec: unary(handlerLog, "GetMetricSpec", async (ref) => {
      const target = usersPerReplica(ref);
      return { metricSpecs: [{ metricName: ONLINE_USERS_METRIC, targetSize: target, targetSizeFloat: target }] };
    }),

    getMetrics: unary(handlerLog, "GetMetrics", async (request) => {
      usersPerReplica(request.scaledObjectRef);
      checkMetricName(request.metricName);
      const count = await online.count();
      handlerLog.debug({ count }, "metrics read");
      return { metricValues: [{ metricName: ONLINE_USERS_METRIC, metricValue: count, metricValueFloat: count }] };
    }),

    streamIsActive: (call: ServerWritableStream<ScaledObjectRef, IsActiveResponse>) => {
      try {
        const request = call.request as unknown;
        if (isMalformed(request)) throw malformedError(request);
        usersPerReplica(call.request);
      } catch (err) {
        logFailure(handlerLog, err);
        call.emit("error", toServiceError(err));
        return;
      }
      const controller = new AbortController();
      streams.add(controller);
      const stop = () => {
        controller.abort();
        streams.delete(controller);
      };
      call.on("cancelled", stop);
      call.on("close", stop);
      controller.signal.addEventListener("abort", () => {
        if (!call.cancelled) call.end();
      });
      let last: boolean | undefined;
      online.watch(controller.signal, (count) => {
        const result = count > 0;
        if (result === last) return;
        last = result;
        call.write({ result });
      });
    },

    endStreams() {
      for (const controller of [...streams]) controller.abort();
      streams.clear();
    },
  };
}
