// The embedded gRPC-web gateway: turns a browser's gRPC-web request (HTTP/1.1)
// into a gRPC call on this process's own gRPC port (HTTP/2) and the answer
// back, the way Envoy's grpc_web filter does in front of the pods
// (envoy/envoy.yaml). No library does exactly this for Node (connect-node
// serves gRPC-web for its own handlers, not as a proxy to a grpc-js server),
// so it is small and ours. Sources: grpc/grpc doc/PROTOCOL-WEB.md; Envoy's
// grpc_web filter (source/extensions/filters/http/grpc_web).
import { type ClientHttp2Session, type ClientHttp2Stream, connect, constants, type IncomingHttpHeaders as H2Headers } from "node:http2";
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from "node:http";
import { status as Status } from "@grpc/grpc-js";
import type { Logger } from "../lib/logger.js";
import { type CorsPolicy, responseCorsHeaders } from "./cors-policy.js";
import { Base64Decoder, encodeGrpcMessage, FrameSplitter, FrameTooLargeError, grpcWebMode, RESPONSE_TYPE, trailersFrame } from "./grpc-web-frames.js";

/** Request headers that belong to one HTTP/1.1 hop (or that the gateway sets itself), never forwarded. */
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
  "host",
  "content-length",
  "te",
  "content-type",
  "http2-settings",
  "expect",
]);
/** Upstream response headers the gateway replaces or that have no meaning in HTTP/1.1. */
const RESPONSE_DROPPED = new Set(["content-type", "content-length", "transfer-encoding", "connection", "keep-alive"]);

export interface GrpcWebGateway {
  /** Serves one gRPC-web POST (the caller has checked the method; this checks the content type). */
  handle(req: IncomingMessage, res: ServerResponse): void;
  /** Calls forwarded and not finished yet. */
  readonly openCalls: number;
  /** Resolves when no call is open (at once when none is). */
  idle(): Promise<void>;
  /** Cuts what is still open and closes the HTTP/2 connection to the gRPC port. */
  close(): void;
}

export interface GatewayOptions {
  /** The gRPC server, e.g. `http://127.0.0.1:50051` (plain HTTP/2, prior knowledge). */
  upstream: string;
  cors: CorsPolicy;
  log: Logger;
}

/**
 * The gRPC paths browsers may call, as envoy/envoy.yaml routes them: every
 * AuthService and ChatService method, and OpsService's GetClusterStatus alone
 * (the dashboard's read; RecordScalingDecision is the controller's). Any other
 * path is answered as Envoy answers an unrouted one, HTTP 404, which gRPC
 * clients read as UNIMPLEMENTED, and never reaches the gRPC port.
 */
const BROWSER_ROUTES = {
  prefixes: ["/parley.auth.v1.AuthService/", "/parley.chat.v1.ChatService/"],
  paths: ["/parley.ops.v1.OpsService/GetClusterStatus"],
};

function isRouted(url: string | undefined): boolean {
  const path = new URL(url ?? "/", "http://x").pathname;
  return BROWSER_ROUTES.paths.includes(path) || BROWSER_ROUTES.prefixes.some((prefix) => path.startsWith(prefix));
}

/** The gRPC status for an HTTP status that is not a gRPC answer (PROTOCOL-HTTP2.md; Envoy's httpToGrpcStatus). */
function statusForHttp(code: number): number {
  if (code === 400) return Status.INTERNAL;
  if (code === 401) return Status.UNAUTHENTICATED;
  if (code === 403) return Status.PERMISSION_DENIED;
  if (code === 404) return Status.UNIMPLEMENTED;
  if (code === 429 || code === 502 || code === 503 || code === 504) return Status.UNAVAILABLE;
  return Status.UNKNOWN;
}

export function createGrpcWebGateway(options: GatewayOptions): GrpcWebGateway {
  const log = options.log.child({ component: "grpc-web-gateway" });
  let session: ClientHttp2Session | undefined;
  const open = new Set<ClientHttp2Stream>();
  const idleWaiters: (() => void)[] = [];

  /** One HTTP/2 connection carries every call; a new one replaces it after a GOAWAY, an error or a close. */
  function upstreamSession(): ClientHttp2Session {
    if (session && !session.closed && !session.destroyed) return session;
    const fresh = connect(options.upstream);
    const forget = () => {
      if (session === fresh) session = undefined;
    };
    fresh.on("error", (err) => log.warn({ err }, "connection to the gRPC port failed"));
    fresh.on("goaway", forget);
    fresh.on("close", forget);
    // The connection must not keep the process alive on its own.
    fresh.unref();
    session = fresh;
    return fresh;
  }

  function settle(stream: ClientHttp2Stream): void {
    open.delete(stream);
    if (open.size === 0) for (const wake of idleWaiters.splice(0)) wake();
  }

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const cors = responseCorsHeaders(options.cors, req.headers);
    const mode = grpcWebMode(req.headers["content-type"]);
    if (mode === undefined) {
      res.writeHead(415, { "content-type": "text/plain; charset=utf-8", ...cors });
      res.end("gRPC-web requests need content-type application/grpc-web(+proto) or application/grpc-web-text(+proto)\n");
      req.resume();
      return;
    }
    // The response is text when `accept` asks for it, as Envoy decides (whatever the request's mode).
    const accept = req.headers.accept?.trim().toLowerCase();
    const textResponse = accept === "application/grpc-web-text" || accept === "application/grpc-web-text+proto";
    const responseType = textResponse ? RESPONSE_TYPE.text : RESPONSE_TYPE.binary;

    /** An answer with no message: the status in the HTTP headers, no body (a trailers-only response). */
    const trailersOnly = (status: number, message: string, extra: OutgoingHttpHeaders = {}) => {
      if (res.headersSent) return endWithTrailers({ "grpc-status": String(status), "grpc-message": encodeGrpcMessage(message) });
      res.writeHead(200, {
        ...extra,
        "content-type": responseType,
        "grpc-status": String(status),
        "grpc-message": encodeGrpcMessage(message),
        ...cors,
      });
      res.end();
    };
    /** Writes to the browser; a slow browser pauses the upstream call until its buffer drains (one listener at a time). */
    let browserFull = false;
    const write = (bytes: Buffer) => {
      const ok = res.write(textResponse ? bytes.toString("base64") : bytes);
      if (!ok && !browserFull) {
        browserFull = true;
        upstream.pause();
        res.once("drain", () => {
          browserFull = false;
          upstream.resume();
        });
      }
    };
    const endWithTrailers = (trailers: Record<string, string | string[] | undefined>) => {
      if (res.writableEnded) return;
      write(trailersFrame(trailers));
      res.end();
    };

    if (!isRouted(req.url)) {
      req.resume();
      // Envoy's local reply to a gRPC request with no route: HTTP 404 mapped to its gRPC status, trailers-only.
      trailersOnly(statusForHttp(404), "no route for this path");
      return;
    }

    const headers: Record<string, string | string[]> = {
      ":method": "POST",
      ":path": req.url ?? "/",
      ":scheme": "http",
      "content-type": "application/grpc",
      te: "trailers",
    };
    for (const [name, value] of Object.entries(req.headers)) {
      if (value !== undefined && !HOP_BY_HOP.has(name) && !name.startsWith(":")) headers[name] = value;
    }
    headers["grpc-accept-encoding"] ??= "identity";

    let upstream: ClientHttp2Stream;
    try {
      upstream = upstreamSession().request(headers, { endStream: false });
    } catch (err) {
      log.warn({ err }, "could not open a call on the gRPC port");
      req.resume();
      trailersOnly(Status.UNAVAILABLE, "the gRPC server is not reachable");
      return;
    }
    open.add(upstream);
    const responseFrames = new FrameSplitter();

    upstream.on("response", (upstreamHeaders: H2Headers, flags: number) => {
      const code = Number(upstreamHeaders[":status"]);
      if (code !== 200 || !String(upstreamHeaders["content-type"] ?? "").startsWith("application/grpc")) {
        upstream.close(constants.NGHTTP2_CANCEL);
        trailersOnly(statusForHttp(code), `the gRPC server answered HTTP ${code}`);
        return;
      }
      const out: OutgoingHttpHeaders = {};
      for (const [name, value] of Object.entries(upstreamHeaders)) {
        if (value !== undefined && !name.startsWith(":") && !RESPONSE_DROPPED.has(name)) out[name] = value;
      }
      res.writeHead(200, { ...out, "content-type": responseType, ...cors });
      if (flags & constants.NGHTTP2_FLAG_END_STREAM) {
        res.end(); // trailers-only: grpc-status is in the headers just sent
        return;
      }
      res.flushHeaders();
    });
    upstream.on("data", (chunk: Buffer) => {
      // Whole frames only, in both modes: a call reset inside a frame never leaves the browser half a message
      // before the trailers. In text mode each frame is base64-encoded on its own, as Envoy does.
      let frames: Buffer[];
      try {
        frames = responseFrames.push(chunk);
      } catch (err) {
        log.warn({ err }, "the gRPC server sent a frame over the limit; call cancelled");
        upstream.close(constants.NGHTTP2_CANCEL);
        return;
      }
      for (const frame of frames) write(frame);
    });
    upstream.on("trailers", (trailers: H2Headers) => endWithTrailers(trailers));
    upstream.on("error", (err) => log.debug({ err }, "gRPC-web call ended with a stream error"));
    upstream.on("close", () => {
      settle(upstream);
      if (res.writableEnded || res.destroyed) return;
      // The call ended without trailers: reset by the server, or the connection went away.
      const cancelled = upstream.rstCode === constants.NGHTTP2_CANCEL;
      trailersOnly(cancelled ? Status.CANCELLED : Status.UNAVAILABLE, "the gRPC call was reset before it finished");
    });

    // The browser went away (tab closed, fetch aborted): cancel the call upstream.
    res.on("close", () => {
      if (!res.writableFinished && !upstream.closed) upstream.close(constants.NGHTTP2_CANCEL);
    });

    const decoder = mode === "text" ? new Base64Decoder() : undefined;
    const requestFrames = new FrameSplitter();
    const fail = (message: string, status: number = Status.INTERNAL) => {
      req.removeAllListeners("data");
      req.resume();
      if (!upstream.closed) upstream.close(constants.NGHTTP2_CANCEL);
      if (!res.headersSent) trailersOnly(status, message);
    };
    /** The upstream call cannot take more yet: the browser's body waits (one listener at a time). */
    let upstreamFull = false;
    req.on("data", (chunk: Buffer) => {
      // Nothing more is kept once the call is over (the body is read and dropped).
      if (upstream.closed) return;
      let bytes: Buffer;
      try {
        bytes = decoder ? decoder.push(chunk.toString("latin1")) : chunk;
        requestFrames.push(bytes);
      } catch (err) {
        if (err instanceof FrameTooLargeError) return fail(err.message, Status.RESOURCE_EXHAUSTED);
        return fail((err as Error).message);
      }
      if (bytes.length > 0 && !upstream.write(bytes) && !upstreamFull) {
        upstreamFull = true;
        req.pause();
        upstream.once("drain", () => {
          upstreamFull = false;
          req.resume();
        });
      }
    });
    req.on("end", () => {
      try {
        decoder?.end();
      } catch (err) {
        return fail((err as Error).message);
      }
      if (requestFrames.partial) return fail("Bad gRPC-web request, the body ends inside a frame.");
      if (!upstream.closed) upstream.end();
    });
  }

  return {
    handle,
    get openCalls() {
      return open.size;
    },
    idle() {
      if (open.size === 0) return Promise.resolve();
      return new Promise((resolve) => idleWaiters.push(resolve));
    },
    close() {
      for (const stream of open) stream.close(constants.NGHTTP2_CANCEL);
      session?.close();
      session = undefined;
    },
  };
}
