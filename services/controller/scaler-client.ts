// Reads the metric the way KEDA does: GetMetricSpec for the target, then
// GetMetrics for the value, over the externalscaler gRPC contract.
import { credentials, Metadata, status, type ClientUnaryCall, type ServiceError } from "@grpc/grpc-js";
import {
  ExternalScalerClient,
  type GetMetricSpecResponse,
  type GetMetricsResponse,
  type ScaledObjectRef,
} from "../../gen/externalscaler/externalscaler.js";
import { ONLINE_USERS_METRIC } from "../lib/contract.js";

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
}

/** Values KEDA reads: the float when above 0, else the integer. */
const pick = (float: number, int: number) => (float > 0 ? float : int);

/**
 * A KEDA-like client of the external scaler. It reconnects quickly after an
 * outage (the gRPC default backoff grows to two minutes, longer than any
 * sync interval), and every failure rejects, so the caller can hold still.
 */
export class ScalerClient {
  private readonly client: InstanceType<typeof ExternalScalerClient>;

  constructor(private readonly options: ScalerClientOptions) {
    this.client = new ExternalScalerClient(options.address, credentials.createInsecure(), {
      "grpc.initial_reconnect_backoff_ms": 250,
      "grpc.max_reconnect_backoff_ms": 2000,
    });
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
