import { OpsServiceService } from "../../gen/parley/ops/v1/ops.js";
import type { Presence } from "../chat/presence.js";
import { type Clock, systemClock } from "../lib/clock.js";
import { tolerantRequests } from "../lib/grpc-calls.js";
import type { HostedService } from "../lib/grpc-server.js";
import type { Logger } from "../lib/logger.js";
import { ClusterStatusReader } from "./cluster-status.js";
import { createOpsHandler } from "./ops-handler.js";
import type { PodReports } from "./pod-reports.js";
import type { ScalingDecisions } from "./scaling-decisions.js";

export interface OpsDeps {
  presence: Presence;
  reports: PodReports;
  decisions: ScalingDecisions;
  log: Logger;
  clock?: Clock;
}

/** `parley.ops.v1.OpsService`, the operations dashboard's data, hosted with the scaler. */
export function createOps({ presence, reports, decisions, log, clock = systemClock }: OpsDeps): HostedService {
  const status = new ClusterStatusReader({ onlineCount: () => presence.onlineCount(), reports, decisions, clock });
  return {
    fullName: "parley.ops.v1.OpsService",
    definition: tolerantRequests(OpsServiceService),
    implementation: createOpsHandler(status, decisions, () => clock.now(), log),
  };
}
