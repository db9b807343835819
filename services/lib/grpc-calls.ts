import type { handleUnaryCall, Metadata, ServerUnaryCall, ServiceDefinition } from "@grpc/grpc-js";
import { AppError } from "./app-error.js";
import { logFailure, toServiceError } from "./errors.js";
import type { Logger } from "./logger.js";
import { findClientMsgId, findNul, findOutOfRange, requestTypeOf } from "./request-fields.js";

/** What a request deserializer returns instead of throwing, so a bad frame does not end a stream. */
export interface Malformed {
  /** Why, in words safe to send (names a field, never quotes its content). */
  readonly malformed: string;
  /** The refused field in proto terms ("conversation_id", "send.to.username"), when one is to blame. */
  readonly field?: string;
  /** The request's own client_msg_id when it decoded free of U+0000, so a refused send is answered by id. */
  readonly clientMsgId?: string;
}

export function isMalformed(value: unknown): value is Malformed {
  return typeof value === "object" && value !== null && typeof (value as Malformed).malformed === "string";
}

export interface TolerantOptions {
  /**
   * Fields, by full proto name ("parley.chat.v1.SendRequest.body"), whose text
   * the domain checks itself rather than the transport (a retried send must
   * find its original before any other check). Default: none.
   */
  domainCheckedText?: readonly string[];
}

/**
 * Returns a copy of `definition` whose request deserializers never throw and
 * refuse what no handler should see:
 * - bytes that do not decode (including a 64-bit integer beyond ±(2^53 - 1),
 *   named when the descriptor finds it);
 * - any string field holding U+0000, which Postgres text cannot store, at any
 *   depth (nested messages, repeated fields, map keys and values), named in
 *   proto terms: "conversation_id must not contain U+0000".
 * Such a request decodes to a `Malformed` instead. grpc-js answers a
 * deserializer exception with INTERNAL and ends the call; `unary` answers a
 * Malformed with INVALID_ARGUMENT, and a stream handler keeps the stream open.
 */
export function tolerantRequests<T extends ServiceDefinition>(definition: T, options: TolerantOptions = {}): T {
  const exempt = new Set(options.domainCheckedText ?? []);
  const copy: Record<string, unknown> = {};
  for (const [name, method] of Object.entries(definition)) {
    const type = requestTypeOf(method.path);
    copy[name] = {
      ...method,
      requestDeserialize(bytes: Buffer): unknown {
        let request: unknown;
        try {
          request = method.requestDeserialize(bytes);
        } catch (err) {
          const problem = findOutOfRange(type, bytes);
          if (problem) return { malformed: problem.reason, field: problem.field } satisfies Malformed;
          return { malformed: err instanceof Error ? err.message : String(err) } satisfies Malformed;
        }
        const problem = findNul(type, request, exempt);
        if (problem === undefined) return request;
        return { malformed: problem.reason, field: problem.field, clientMsgId: findClientMsgId(type, request) } satisfies Malformed;
      },
    };
  }
  return copy as T;
}

/** The INVALID_ARGUMENT that answers a malformed request or frame: the field's own reason, or why the bytes did not decode. */
export function malformedError(request: Malformed, what: "request" | "frame" = "request"): AppError {
  return new AppError("invalid_argument", request.field === undefined ? `malformed ${what}: ${request.malformed}` : request.malformed);
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
    const result = isMalformed(request) ? Promise.reject(malformedError(request)) : fn(call.request, call);
    result.then(
      (response) => callback(null, response),
      (err: unknown) => {
        logFailure(methodLog, err);
        callback(toServiceError(err));
      },
    );
  };
}
