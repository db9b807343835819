// Reads the metric the way KEDA does: GetMetricSpec for the target, then
// GetMetrics for the value, over the externalscaler gRPC contract.
import { credentials, Metadata, status, type ClientUnaryCall, type ServiceError } from "@grpc/grpc-js";
import {
  ExternalScalerClient,
  type GetMetricSpecResponse,
  type GetMetricsResponse,
  type ScaledObjectRef,
} from "../../gen/externalscaler/externalscaler.js";
import { OpsServiceClient, ScalingAction } from "../../gen/parley/ops/v1/ops.js";
import { systemClock } from "../lib/clock.js";
import { ONLINE_USERS_METRIC } from "../lib/contract.js";
import type { Logger } from "../lib/logger.js";
// The record the dashboard keeps is the one the controller reports (OpsService.RecordScalingDecision).
import type { ScalingDecisionRecord } from "../ops/scaling-decisions.js";
import { LogBackoff } from "./log-backoff.js";

/** What one read gives: the metric and the target the scaler applies to it. */
export interface ScalerReading {
  /** Distinct users online in the cluster. */
  users: number;
  /** Users per replica, as the scaler's MetricSpec states it (KEDA's HPA divides by this). */
  target: number;
}

/** A metric read that failed: the scaler is down, slow, or said something we cannot use. */
class ScalerReadError extends Error {
  constructor(
    message: string,
    readonly code?: status,
  ) {
    super(message);
    this.name = "ScalerReadError";
  }
}

export interface ScalerClientOptions {
  /** host:port of the scaler. */
  address: string;
  /** Who is asking, as a ScaledObject would: name, namespace and usersPerReplica metadata. */
  ref: ScaledObjectRef;
  /** Each call gets this long before it fails with DEADLINE_EXCEEDED. */
  deadlineMs: number;
  /** Where failed decision reports are logged (they never fail the tick). */
  log?: Logger;
}

const ACTIONS: Record<ScalingDecisionRecord["action"], ScalingAction> = {
  up: ScalingAction.SCALING_ACTION_UP,
  down: ScalingAction.SCALING_ACTION_DOWN,
  hold: ScalingAction.SCALING_ACTION_HOLD,
  none: ScalingAction.SCALING_ACTION_NONE,
};

/** Values KEDA reads: the float when above 0, else the integer. */
const pick = (float: number, int: number) => (float > 0 ? float : int);

/**
 * A KEDA-like client of the external scaler. It reconnects quickly after an
 * outage (the gRPC default backoff grows to two minutes, longer than any
 * sync interval), and every failure rejects, so the caller can hold still.
 */
export class ScalerClient {
  private readonly client: InstanceType<typeof ExternalScalerClient>;
  private readonly ops: InstanceType<typeof OpsServiceClient>;
  private reporting = false;
  /** Repeated report failures are logged less and less often (log-backoff.ts), and the recovery once. */
  private readonly reportFailures = new LogBackoff(systemClock);

  constructor(private readonly options: ScalerClientOptions) {
    const channelOptions = { "grpc.initial_reconnect_backoff_ms": 250, "grpc.max_reconnect_backoff_ms": 2000 };
    this.client = new ExternalScalerClient(options.address, credentials.createInsecure(), channelOptions);
    this.ops = new OpsServiceClient(options.address, credentials.createInsecure(), channelOptions);
  }

  /**
   * Tells the scaler what a tick decided, for the operations dashboard.
   * Best effort, never rejects, never piles up: while one report is in
   * flight the next is dropped. Failures are logged at warn on the 1st, 2nd,
   * 4th, 8th... in a row (a scaler of an older version answers UNIMPLEMENTED
   * every tick), at debug otherwise; resolves when the call is over.
   */
  async report(decision: ScalingDecisionRecord): Promise<void> {
    if (this.reporting) return;
    this.reporting = true;
    const request = {
      decision: {
        decidedAt: new Date(decision.at),
        fromReplicas: decision.from,
        toReplicas: decision.to,
        desiredReplicas: decision.desired,
        onlineUsers: decision.users,
        action: ACTIONS[decision.action],
        reason: decision.reason,
        dryRun: decision.dryRun,
      },
    };
    try {
      await this.call("RecordScalingDecision", undefined, (md, opts, done) => this.ops.recordScalingDecision(request, md, opts, done));
      const back = this.reportFailures.succeeded();
      if (back) this.options.log?.info(back, "decisions reach the scaler again");
    } catch (err) {
      const line = this.reportFailures.failed(err);
      if (line) this.options.log?.warn({ err, ...line }, "could not report the decision to the scaler");
    } finally {
      this.reporting = false;
    }
  }

  /** GetMetricSpec then GetMetrics for `online_users`; rejects with ScalerReadError. */
  async read(signal?: AbortSignal): Promise<ScalerReading> {
    const ref = this.options.ref;
    const spec = await this.call<GetMetricSpecResponse>("GetMetricSpec", signal, (md, opts, done) => this.client.getMetricSpec(ref, md, opts, done));
    const metricSpec = spec.metricSpecs.find((s) => s.metricName === ONLINE_USERS_METRIC) ?? spec.metricSpecs[0];
    const target = metricSpec ? pick(metricSpec.targetSizeFloat, metricSpec.targetSize) : 0;
    if (!metricSpec || !(target > 0)) {
      throw new ScalerReadError(`GetMetricSpec gave no usable target for ${ONLINE_USERS_METRIC}: ${JSON.stringify(spec)}`);
    }

    const metrics = await this.call<GetMetricsResponse>("GetMetrics", signal, (md, opts, done) =>
      this.client.getMetrics({ scaledObjectRef: ref, metricName: metricSpec.metricName || ONLINE_USERS_METRIC }, md, opts, done),
    );
    const value = metrics.metricValues.find((v) => v.metricName === metricSpec.metricName) ?? metrics.metricValues[0];
    const users = value ? pick(value.metricValueFloat, value.metricValue) : Number.NaN;
    if (!Number.isFinite(users) || users < 0) {
      throw new ScalerReadError(`GetMetrics gave no usable value for ${ONLINE_USERS_METRIC}: ${JSON.stringify(metrics)}`);
    }
    return { users, target };
  }

  close(): void {
    this.client.close();
    this.ops.close();
  }

  /** One unary call with its own deadline, cancelled when `signal` aborts. */
  private call<T>(
    rpc: string,
    signal: AbortSignal | undefined,
    start: (md: Metadata, opts: { deadline: Date }, done: (err: ServiceError | null, response: T) => void) => ClientUnaryCall,
  ): Promise<T> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(new ScalerReadError(`${rpc} not sent: shutting down`, status.CANCELLED));
        return;
      }
      const onAbort = () => call.cancel();
      const call = start(new Metadata(), { deadline: new Date(Date.now() + this.options.deadlineMs) }, (err, response) => {
        signal?.removeEventListener("abort", onAbort);
        if (err) reject(new ScalerReadError(`${rpc} failed: ${status[err.code] ?? err.code} ${err.details}`, err.code));
        else resolve(response);
      });
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }
}
