// The web server of the embedded mode, on WEB_PORT (HTTP/1.1): the browser
// app's files, gRPC-web through the gateway, and CORS preflights answered as
// Envoy's cors filter answers them. In Kubernetes Envoy takes the gRPC-web and
// CORS part (envoy/envoy.yaml) and sends only the page's GETs here.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "../lib/logger.js";
import type { StaticFile } from "./app-bundle.js";
import { ENVOY_CORS_POLICY, isPreflight, preflightHeaders } from "./cors-policy.js";
import { createGrpcWebGateway } from "./grpc-web-gateway.js";

export interface WebServerOptions {
  /** WEB_PORT; 0 picks a free one. */
  port: number;
  /** The gRPC port of this process, where the gateway forwards calls. */
  grpcPort: number;
  /** The files served to GET and HEAD, by URL path (buildWebApp()). */
  files: Map<string, StaticFile>;
  log: Logger;
}

export interface WebServer {
  readonly port: number;
  /**
   * Stops accepting connections, lets the open gRPC-web calls finish (the
   * drain ends the streams; their last frames reach the browsers) for up to
   * `timeoutMs`, then cuts what is left and closes the gateway's connection.
   */
  close(timeoutMs: number): Promise<void>;
}

/** Listens on `options.port` (all interfaces) and resolves once it does. */
export async function startWebServer(options: WebServerOptions): Promise<WebServer> {
  const log = options.log.child({ component: "web" });
  const gateway = createGrpcWebGateway({ upstream: `http://127.0.0.1:${options.grpcPort}`, cors: ENVOY_CORS_POLICY, log });

  function serveFile(req: IncomingMessage, res: ServerResponse): void {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    const file = options.files.get(path);
    if (file === undefined) {
      res.writeHead(404, { "content-type": "text/plain; charset=utf-8" });
      res.end("not found\n");
      return;
    }
    res.writeHead(200, {
      "content-type": file.contentType,
      "content-length": file.body.length,
      // Built at start-up: a restarted server may serve a new build, so the browser revalidates every time.
      "cache-control": "no-cache",
      "x-content-type-options": "nosniff",
    });
    res.end(req.method === "HEAD" ? undefined : file.body);
  }

  const server = createServer((req, res) => {
    if (isPreflight(req.method, req.headers)) {
      const headers = preflightHeaders(ENVOY_CORS_POLICY, req.headers);
      res.writeHead(headers ? 200 : 403, { ...headers, "content-length": 0 });
      res.end();
    } else if (req.method === "POST") {
      gateway.handle(req, res);
    } else if (req.method === "GET" || req.method === "HEAD") {
      serveFile(req, res);
    } else {
      res.writeHead(405, { allow: "GET, HEAD, POST, OPTIONS", "content-type": "text/plain; charset=utf-8" });
      res.end("method not allowed\n");
    }
  });
  // A malformed request line or header is answered 400 by Node; this only keeps a broken socket from being logged as a crash.
  server.on("clientError", (err, socket) => {
    log.debug({ err }, "bad HTTP request");
    if (socket.writable) socket.end("HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n");
    else socket.destroy();
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  log.info({ port, url: `http://localhost:${port}` }, "web server listening");

  let closing: Promise<void> | undefined;
  return {
    port,
    close(timeoutMs) {
      closing ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        let timer: NodeJS.Timeout | undefined;
        const deadline = new Promise<"timeout">((resolve) => {
          timer = setTimeout(() => resolve("timeout"), timeoutMs);
        });
        if ((await Promise.race([gateway.idle(), deadline])) === "timeout") {
          log.warn({ calls: gateway.openCalls }, "gRPC-web calls still open at the deadline; cutting them");
        }
        clearTimeout(timer);
        gateway.close();
        server.closeAllConnections();
        await closed;
      })();
      return closing;
    },
  };
}
