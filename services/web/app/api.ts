// The browser's gRPC-web clients: one transport to the page's own origin (the
// embedded gateway on WEB_PORT, or Envoy's grpc_web filter in Kubernetes),
// carrying the session's bearer token on every call.
import { Code, ConnectError, createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { AuthService } from "../../../gen/es/parley/auth/v1/auth_pb.js";
import { ChatService } from "../../../gen/es/parley/chat/v1/chat_pb.js";
import { OpsService } from "../../../gen/es/parley/ops/v1/ops_pb.js";

export interface Api {
  auth: Client<typeof AuthService>;
  chat: Client<typeof ChatService>;
}

/**
 * Clients for AuthService and ChatService over gRPC-web (binary mode) to
 * `baseUrl` (default: this page's origin). `token()` is read at each call, so
 * a log-in takes effect without rebuilding the clients; no token, no header.
 */
export function createApi(token: () => string | undefined, baseUrl = location.origin): Api {
  const bearer: Interceptor = (next) => (req) => {
    const value = token();
    if (value) req.header.set("authorization", `Bearer ${value}`);
    return next(req);
  };
  const transport = createGrpcWebTransport({ baseUrl, interceptors: [bearer] });
  return { auth: createClient(AuthService, transport), chat: createClient(ChatService, transport) };
}

/**
 * The operations dashboard's client: OpsService over gRPC-web to `baseUrl`,
 * with no token (GetClusterStatus answers aggregate figures only).
 */
export function createOpsClient(baseUrl = location.origin): Client<typeof OpsService> {
  return createClient(OpsService, createGrpcWebTransport({ baseUrl }));
}

/** The server's own message for a failed call (e.g. "wrong username or password"), for showing to the user. */
export function errorText(err: unknown): string {
  if (err instanceof ConnectError) return err.rawMessage || Code[err.code];
  return err instanceof Error ? err.message : String(err);
}

/**
 * A failure the same request may get past later: the server or the network
 * was away (a failed fetch is Unknown), or we were rate-limited. INTERNAL is
 * not: a retry would get the same answer forever.
 */
export function isRetryable(err: unknown): boolean {
  if (!(err instanceof ConnectError)) return true;
  return [Code.Unavailable, Code.DeadlineExceeded, Code.Unknown, Code.ResourceExhausted, Code.Aborted].includes(err.code);
}

/** The session is gone (logged out elsewhere, revoked or expired): the user must log in again. */
export function isUnauthenticated(err: unknown): boolean {
  return err instanceof ConnectError && err.code === Code.Unauthenticated;
}
