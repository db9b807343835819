import type { handleUnaryCall, Metadata, ServerUnaryCall, ServiceDefinition } from "@grpc/grpc-js";
import { AppError, toServiceError } from "./errors.js";
import type { Logger } from "./logger.js";

/** What a request deserializer returns instead of throwing, so a bad frame does not end a stream. */
export interface Malformed {
  readonly malformed: string;
}

export function isMalformed(value: unknown): value is Malformed {
  return typeof value === "object" && value !== null && typeof (value as Malformed).malformed === "string";
}

/**
 * Returns a copy of `definition` whose request deserializers never throw.
 * grpc-js answers a deserializer exception with INTERNAL and ends the call; we
 * want INVALID_ARGUMENT, a log line, and (on a stream) the stream kept open.
 */
export function tolerantRequests<T extends ServiceDefinition>(definition: T): T {
  const copy: Record<string, unknown> = {};
  for (const [name, method] of Object.entries(definition)) {
    copy[name] = {
      ...method,
      requestDeserialize(bytes: Buffer) {
        try {
          return method.requestDeserialize(bytes);
        } catch (err) {
          return { malformed: err instanceof Error ? err.message : String(err) } satisfies Malformed;
        }
      },
    };
  }
  return copy as T;
}

/** The bearer token in `authorization` metadata, or undefined. */
export function bearerToken(metadata: Metadata): string | undefined {
  const value = metadata.get("authorization")[0];
  if (typeof value !== "string") return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(value);
  return match?.[1];
}

/**
 * Adapts an async function to a grpc-js unary handler: one callback, errors
 * mapped to a status in one place, malformed requests answered INVALID_ARGUMENT.
 */
export function unary<Req, Res>(
  log: Logger,
  method: string,
  fn: (request: Req, call: ServerUnaryCall<Req, Res>) => Promise<Res>,
): handleUnaryCall<Req, Res> {
  const methodLog = log.child({ method });
  return (call, callback) => {
    const request = call.request as unknown;
    const result = isMalformed(request)
      ? Promise.reject(new AppError("invalid_argument", `malformed request: ${request.malformed}`))
      : fn(call.request, call);
    result.then(
      (response) => callback(null, response),
      (err: unknown) => callback(toServiceError(err, methodLog)),
    );
  };
}
