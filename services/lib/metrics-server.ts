import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";
import type { Logger } from "./logger.js";

export interface MetricsServerOptions {
  /** The TCP port; 0 picks a free one (tests). Callers treat METRICS_PORT 0 as "no server" before they get here. */
  port: number;
  /** What `/metrics` serves, in Prometheus' text exposition format. */
  registry: Registry;
  log: Logger;
}

export interface MetricsServer {
  readonly port: number;
  /** Stops listening and ends idle keep-alive connections; resolves once closed. Idempotent. */
  close(): Promise<void>;
}

/**
 * Prometheus' scrape endpoint, on a port of its own and plain HTTP/1.1, so a
 * scrape never competes with the chat traffic on the gRPC or web ports:
 * `GET /metrics` answers 200 with the registry's text format
 * (`registry.contentType`), `HEAD /metrics` the same headers; any other path
 * 404, any other method 405 with `Allow`. A failing collector answers 500
 * and is logged; the process keeps serving.
 * (https://prometheus.io/docs/instrumenting/exposition_formats/)
 */
export async function startMetricsServer({ port, registry, log }: MetricsServerOptions): Promise<MetricsServer> {
  const server = createServer((req, res) => void serve(req, res, registry, log));
  // A scrape is small; a client that sends nothing for this long is gone.
  server.requestTimeout = 10_000;
  server.headersTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const bound = (server.address() as AddressInfo).port;
  log.info({ port: bound }, "metrics listening");
  let closed: Promise<void> | undefined;
  return {
    port: bound,
    close() {
      closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      return closed;
    },
  };
}

async function serve(req: IncomingMessage, res: ServerResponse, registry: Registry, log: Logger): Promise<void> {
  const path = (req.url ?? "/").split("?")[0];
  if (path !== "/metrics") return answer(res, 404, "not found: metrics are at /metrics\n");
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.setHeader("allow", "GET, HEAD");
    return answer(res, 405, "method not allowed\n");
  }
  let body: string;
  try {
    body = await registry.metrics();
  } catch (err) {
    log.error({ err }, "could not collect the metrics");
    return answer(res, 500, "could not collect the metrics\n");
  }
  res.writeHead(200, { "content-type": registry.contentType, "content-length": Buffer.byteLength(body) });
  res.end(req.method === "HEAD" ? undefined : body);
}

function answer(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { "content-type": "text/plain; charset=utf-8" });
  res.end(text);
}
