// A local HTTP server that speaks the part of the Kubernetes API the bundled
// controller uses: apps/v1 deployments/{name}/scale (GET, PATCH as a JSON
// merge patch only) and events.k8s.io/v1 events (POST). It records every
// request, can answer 503 or go away and come back on the same port, and
// writes a real kubeconfig file that points at it.
import { mkdirSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { join } from "node:path";

export interface RecordedRequest {
  method: string;
  path: string;
  contentType: string | undefined;
  body: any;
  status: number;
}

export interface LocalScaleApiServerOptions {
  namespace: string;
  name: string;
  replicas: number;
  /** Folder for the kubeconfig file. */
  dir: string;
}

const SCALE_PATH = /^\/apis\/apps\/v1\/namespaces\/([^/]+)\/deployments\/([^/]+)\/scale$/;
const EVENTS_PATH = /^\/apis\/events\.k8s\.io\/v1\/namespaces\/([^/]+)\/events$/;
/** What the real API server requires of an events.k8s.io/v1 Event. */
const EVENT_FIELDS = ["eventTime", "reportingController", "reportingInstance", "action", "reason", "note", "type"];

/** The local Kubernetes scale API: holds one Deployment's replicas, records every request. */
export class LocalScaleApiServer {
  replicas: number;
  /** Answer everything with this status instead (e.g. 503), while set. */
  failWith: number | undefined;
  readonly requests: RecordedRequest[] = [];
  readonly kubeconfig: string;
  private server: Server | undefined;

  private constructor(
    private readonly options: LocalScaleApiServerOptions,
    public port: number,
  ) {
    this.replicas = options.replicas;
    this.kubeconfig = join(options.dir, "kubeconfig");
  }

  /** Listens on a free loopback port and writes the kubeconfig (no auth, plain HTTP). */
  static async start(options: LocalScaleApiServerOptions): Promise<LocalScaleApiServer> {
    const api = new LocalScaleApiServer(options, 0);
    await api.listen();
    mkdirSync(options.dir, { recursive: true });
    const kubeconfig = {
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: "stub", cluster: { server: `http://127.0.0.1:${api.port}`, "insecure-skip-tls-verify": true } }],
      users: [{ name: "stub", user: {} }],
      contexts: [{ name: "stub", context: { cluster: "stub", user: "stub", namespace: options.namespace } }],
      "current-context": "stub",
    };
    writeFileSync(api.kubeconfig, JSON.stringify(kubeconfig, null, 2));
    return api;
  }

  patches(): RecordedRequest[] {
    return this.requests.filter((r) => r.method === "PATCH");
  }

  events(): RecordedRequest[] {
    return this.requests.filter((r) => r.method === "POST");
  }

  gets(): RecordedRequest[] {
    return this.requests.filter((r) => r.method === "GET");
  }

  /** Listens again on the same port after `stop()`. */
  listen(): Promise<void> {
    const server = createServer((req, res) => void this.handle(req, res));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.port, "127.0.0.1", () => {
        this.port = (server.address() as { port: number }).port;
        resolve();
      });
    });
  }

  /** Refuses connections from now on, dropping open ones. */
  stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return Promise.resolve();
    return new Promise((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  private scale() {
    const { name, namespace } = this.options;
    return {
      kind: "Scale",
      apiVersion: "autoscaling/v1",
      metadata: { name, namespace, resourceVersion: String(this.requests.length) },
      spec: { replicas: this.replicas },
      status: { replicas: this.replicas, selector: `app=${name}` },
    };
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString();
    let body: any;
    try {
      body = text === "" ? undefined : JSON.parse(text);
    } catch {
      body = text;
    }
    const path = new URL(req.url ?? "/", "http://stub").pathname;
    const record: RecordedRequest = { method: req.method ?? "", path, contentType: req.headers["content-type"], body, status: 0 };
    this.requests.push(record);
    const [status, response] = this.answer(record);
    record.status = status;
    res.writeHead(status, { "content-type": "application/json" });
    res.end(JSON.stringify(response));
  }

  private answer(r: RecordedRequest): [number, unknown] {
    const { name, namespace } = this.options;
    const status = (code: number, message: string) =>
      [code, { kind: "Status", apiVersion: "v1", status: "Failure", code, message }] as [number, unknown];
    if (this.failWith !== undefined) return status(this.failWith, "the stub is failing on purpose");

    const scale = SCALE_PATH.exec(r.path);
    if (scale) {
      if (scale[1] !== namespace || scale[2] !== name) return status(404, `deployments.apps "${scale[2]}" not found`);
      if (r.method === "GET") return [200, this.scale()];
      if (r.method !== "PATCH") return status(405, "only GET and PATCH are served on scale");
      if (r.contentType?.split(";")[0] !== "application/merge-patch+json") {
        return status(415, `this stub accepts only application/merge-patch+json, got ${r.contentType}`);
      }
      const replicas = r.body?.spec?.replicas;
      if (!Number.isInteger(replicas) || replicas < 0) return status(422, "spec.replicas must be a non-negative integer");
      this.replicas = replicas;
      return [200, this.scale()];
    }

    const events = EVENTS_PATH.exec(r.path);
    if (events && r.method === "POST") {
      const missing = EVENT_FIELDS.filter((f) => !r.body?.[f]);
      const regarding = r.body?.regarding;
      if (events[1] !== namespace || r.body?.metadata?.namespace !== namespace) return status(422, "event namespace mismatch");
      if (missing.length > 0 || !r.body?.metadata?.name) return status(422, `event is missing ${missing.join(", ") || "metadata.name"}`);
      if (regarding?.kind !== "Deployment" || regarding?.name !== name || regarding?.namespace !== namespace) {
        return status(422, "event must regard the Deployment");
      }
      return [201, r.body];
    }
    return status(404, `the stub does not serve ${r.method} ${r.path}`);
  }
}
