// The CORS policy of envoy/envoy.yaml (the cors filter's per-route
// CorsPolicy), for the embedded gateway. test/envoy-config.test.ts checks
// that the two stay equal. Behaviour follows Envoy's cors filter: a preflight
// (OPTIONS with `origin` and `access-control-request-method`) from an allowed
// origin is answered at once; an actual request from an allowed origin gets
// `access-control-allow-origin` (the request's origin) and the exposed headers.
import type { IncomingHttpHeaders } from "node:http";

export interface CorsPolicy {
  /** Origins allowed, as Envoy's `allow_origin_string_match` safe_regex (matched against the whole origin). */
  allowOrigin: RegExp;
  allowMethods: string;
  allowHeaders: string;
  exposeHeaders: string;
  /** Seconds a browser may cache a preflight, as the header's string. */
  maxAge: string;
  allowCredentials: boolean;
}

/** The policy of envoy/envoy.yaml: any origin, bearer tokens (no cookies) so no credentials, one day of cached preflights. */
export const ENVOY_CORS_POLICY: CorsPolicy = {
  allowOrigin: /^(?:.*)$/s,
  allowMethods: "GET, PUT, DELETE, POST, OPTIONS",
  allowHeaders:
    "content-type, x-grpc-web, x-user-agent, authorization, grpc-timeout, keep-alive, user-agent, cache-control, content-transfer-encoding, x-accept-content-transfer-encoding, x-accept-response-streaming",
  exposeHeaders: "grpc-status, grpc-message, grpc-status-details-bin",
  maxAge: "86400",
  allowCredentials: false,
};

function allowedOrigin(policy: CorsPolicy, headers: IncomingHttpHeaders): string | undefined {
  const origin = headers.origin;
  return origin !== undefined && origin !== "" && policy.allowOrigin.test(origin) ? origin : undefined;
}

/** A CORS preflight, as Envoy's cors filter recognises one. */
export function isPreflight(method: string | undefined, headers: IncomingHttpHeaders): boolean {
  return method === "OPTIONS" && !!headers.origin && !!headers["access-control-request-method"];
}

/** The headers of the answer to a preflight; undefined when the origin is not allowed. */
export function preflightHeaders(policy: CorsPolicy, headers: IncomingHttpHeaders): Record<string, string> | undefined {
  const origin = allowedOrigin(policy, headers);
  if (origin === undefined) return undefined;
  return {
    "access-control-allow-origin": origin,
    ...(policy.allowCredentials ? { "access-control-allow-credentials": "true" } : {}),
    "access-control-allow-methods": policy.allowMethods,
    "access-control-allow-headers": policy.allowHeaders,
    "access-control-max-age": policy.maxAge,
  };
}

/** The CORS headers added to an actual response; none when there is no allowed origin. */
export function responseCorsHeaders(policy: CorsPolicy, headers: IncomingHttpHeaders): Record<string, string> {
  const origin = allowedOrigin(policy, headers);
  if (origin === undefined) return {};
  return {
    "access-control-allow-origin": origin,
    ...(policy.allowCredentials ? { "access-control-allow-credentials": "true" } : {}),
    "access-control-expose-headers": policy.exposeHeaders,
  };
}
