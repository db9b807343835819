import { type ServerInterceptor, ServerInterceptingCall, type ServerMethodDefinition, status } from "@grpc/grpc-js";
import type { ServerMetrics } from "./metrics.js";

/** go-grpc-prometheus' `grpc_type` values. */
type GrpcType = "unary" | "client_stream" | "server_stream" | "bidi_stream";

/**
 * gRPC status codes as go-grpc-prometheus writes them in `grpc_code`: Go's
 * `codes.Code.String()` (https://pkg.go.dev/google.golang.org/grpc/codes),
 * so that the usual alerting rules and Grafana's gRPC dashboards match
 * (`grpc_code!="OK"`, `grpc_code=~"Unavailable|Internal"`).
 */
const CODE_NAMES: Record<number, string> = {
  [status.OK]: "OK",
  [status.CANCELLED]: "Canceled",
  [status.UNKNOWN]: "Unknown",
  [status.INVALID_ARGUMENT]: "InvalidArgument",
  [status.DEADLINE_EXCEEDED]: "DeadlineExceeded",
  [status.NOT_FOUND]: "NotFound",
  [status.ALREADY_EXISTS]: "AlreadyExists",
  [status.PERMISSION_DENIED]: "PermissionDenied",
  [status.RESOURCE_EXHAUSTED]: "ResourceExhausted",
  [status.FAILED_PRECONDITION]: "FailedPrecondition",
  [status.ABORTED]: "Aborted",
  [status.OUT_OF_RANGE]: "OutOfRange",
  [status.UNIMPLEMENTED]: "Unimplemented",
  [status.INTERNAL]: "Internal",
  [status.UNAVAILABLE]: "Unavailable",
  [status.DATA_LOSS]: "DataLoss",
  [status.UNAUTHENTICATED]: "Unauthenticated",
};

/** The name of a status code; a code outside the 17 the protocol defines counts as Unknown (the protocol's own rule). */
function codeName(code: number): string {
  return CODE_NAMES[code] ?? "Unknown";
}

interface Inc {
  inc(value?: number): void;
}

/** One method's metrics, with the labels bound once: a call then costs counter increments only. */
interface MethodMetrics {
  started: Inc;
  received: Inc;
  sent: Inc;
  /** Messages not yet moved into `received` and `sent` (ServerMetrics.beforeCollect): a frame costs an addition. */
  pendingReceived: number;
  pendingSent: number;
  seconds: { observe(value: number): void };
  /** Bound per status code on first use. */
  handled: Map<number, Inc>;
  labels: [GrpcType, string, string];
}

function grpcType(method: ServerMethodDefinition<unknown, unknown>): GrpcType {
  if (method.requestStream) return method.responseStream ? "bidi_stream" : "client_stream";
  return method.responseStream ? "server_stream" : "unary";
}

/**
 * The server interceptor that fills go-grpc-prometheus' server metrics
 * (https://github.com/grpc-ecosystem/go-grpc-prometheus, "Metrics"):
 * `grpc_server_started_total` when a call starts,
 * `grpc_server_msg_received_total` and `grpc_server_msg_sent_total` for every
 * message (unary calls' single messages too, as go-grpc-prometheus counts
 * them), and `grpc_server_handled_total{grpc_code}` with
 * `grpc_server_handling_seconds` once, at its status, or with `Canceled` when
 * the client cancels first. Labels: `grpc_type`, `grpc_service` (the full
 * protobuf name) and `grpc_method`, all from the method's path, a fixed set:
 * grpc-js answers UNIMPLEMENTED to an unknown path before any interceptor.
 * Every hosted service counts, health and reflection included.
 */
export function metricsInterceptor(metrics: ServerMetrics): ServerInterceptor {
  const byPath = new Map<string, MethodMetrics>();
  const forMethod = (method: ServerMethodDefinition<unknown, unknown>): MethodMetrics => {
    let found = byPath.get(method.path);
    if (found === undefined) {
      const slash = method.path.lastIndexOf("/");
      const labels: [GrpcType, string, string] = [grpcType(method), method.path.slice(1, slash), method.path.slice(slash + 1)];
      found = {
        started: metrics.grpcStarted.labels(...labels),
        received: metrics.grpcMsgReceived.labels(...labels),
        sent: metrics.grpcMsgSent.labels(...labels),
        pendingReceived: 0,
        pendingSent: 0,
        seconds: metrics.grpcHandlingSeconds.labels(...labels),
        handled: new Map(),
        labels,
      };
      byPath.set(method.path, found);
    }
    return found;
  };
  metrics.beforeCollect(() => {
    for (const method of byPath.values()) {
      if (method.pendingReceived > 0) method.received.inc(method.pendingReceived);
      if (method.pendingSent > 0) method.sent.inc(method.pendingSent);
      method.pendingReceived = 0;
      method.pendingSent = 0;
    }
  });
  const handled = (method: MethodMetrics, code: number): Inc => {
    let counter = method.handled.get(code);
    if (counter === undefined) {
      counter = metrics.grpcHandled.labels(...method.labels, codeName(code));
      method.handled.set(code, counter);
    }
    return counter;
  };

  return (descriptor, call) => {
    const method = forMethod(descriptor);
    method.started.inc();
    const startedAt = performance.now();
    let finished = false;
    const finish = (code: number) => {
      if (finished) return;
      finished = true;
      handled(method, code).inc();
      method.seconds.observe((performance.now() - startedAt) / 1000);
    };
    return new ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMessage: (message, nextMessage) => {
            method.pendingReceived += 1;
            nextMessage(message);
          },
          onCancel: () => finish(status.CANCELLED),
        }),
      sendMessage: (message, next) => {
        method.pendingSent += 1;
        next(message);
      },
      sendStatus: (sent, next) => {
        finish(sent.code);
        next(sent);
      },
    });
  };
}
