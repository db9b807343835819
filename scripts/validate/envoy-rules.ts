// What Parley needs from its edge Envoy, beyond "Envoy would load it": the
// filter order, timeouts that let chat streams live, CORS that lets a browser
// read gRPC errors, a private admin, and upstreams that balance across pods and
// notice a draining one. Which RPCs stream is read from our own protos, so a
// new streaming RPC without its `timeout: 0s` route is caught.
import { readdirSync } from "node:fs";
import { isIP } from "node:net";
import { dirname, isAbsolute, join } from "node:path";
import { fileURLToPath } from "node:url";
import protobuf from "protobufjs";
import { childPath, parseDuration, type Problem } from "./proto-walk.js";

const PROTO_DIR = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "proto");
const TYPE_PREFIX = "type.googleapis.com/";

const HCM = "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
const CORS_POLICY = "envoy.extensions.filters.http.cors.v3.CorsPolicy";
const UPSTREAM_HTTP_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";

/** The http_filters, by @type, in the only order that works: gRPC-web decoding, then CORS, then routing. */
export const FILTER_ORDER = [
  "envoy.extensions.filters.http.grpc_web.v3.GrpcWeb",
  "envoy.extensions.filters.http.cors.v3.Cors",
  "envoy.extensions.filters.http.router.v3.Router",
] as const;

/** What the edge must route where; the defaults describe Parley's k8s/ manifests. */
export interface EdgeExpectations {
  /** Service full name → the cluster that serves it: every method is routed there. */
  services: Record<string, string>;
  /**
   * Single methods routed on their own (the rest of their service stays
   * unrouted): path → the cluster that serves it and the health service its
   * gRPC health check asks about.
   */
  methods: Record<string, { cluster: string; healthService: string }>;
  /** Paths no route may match: RPCs meant for callers inside the cluster only. */
  unrouted: string[];
  /** The headless Service a cluster resolves. Default `<cluster>-headless.parley.svc.cluster.local`. */
  upstreamHost: (cluster: string) => string;
  /** Default 50051, the servers' GRPC_PORT. */
  upstreamPort: number;
  /**
   * A stream's idle timeout must exceed this (or be 0, off). Default 60 s: above
   * the client's 20 s ping and the servers' 60 s HTTP/2 keepalive.
   */
  minStreamIdleSeconds: number;
  /**
   * The browser app's page: these paths (GET) go to `cluster`, which resolves
   * the chat pods' headless Service on their WEB_PORT over HTTP/1.1 (the web
   * server of services/web/web-server.ts speaks no h2c).
   */
  page: { paths: string[]; cluster: string; upstreamHost: string; port: number };
  /** Headers a gRPC-web browser client must be allowed to send / to read. */
  corsAllowHeaders: string[];
  corsExposeHeaders: string[];
}

export const PARLEY_EDGE: EdgeExpectations = {
  services: { "parley.auth.v1.AuthService": "auth", "parley.chat.v1.ChatService": "chat" },
  // The ops dashboard's figures, from the scaler pods; the controller's RecordScalingDecision stays inside.
  methods: { "/parley.ops.v1.OpsService/GetClusterStatus": { cluster: "scaler", healthService: "externalscaler.ExternalScaler" } },
  unrouted: ["/parley.ops.v1.OpsService/RecordScalingDecision"],
  upstreamHost: (cluster) => `${cluster}-headless.parley.svc.cluster.local`,
  upstreamPort: 50051,
  minStreamIdleSeconds: 60,
  page: { paths: ["/", "/ops", "/app.js", "/app.css"], cluster: "web", upstreamHost: "chat-headless.parley.svc.cluster.local", port: 8080 },
  corsAllowHeaders: ["content-type", "x-grpc-web", "x-user-agent", "authorization", "grpc-timeout"],
  corsExposeHeaders: ["grpc-status", "grpc-message"],
};

interface Rpc {
  path: string;
  cluster: string;
  service: string;
  streaming: boolean;
}

/**
 * Every RPC the edge routes, from proto/, with whether it streams: all of
 * `services`, and each of `methods` (unary when its service is not in proto/
 * yet). Also the paths that must stay unrouted: `unrouted`, and the other
 * methods of a service that only has single methods routed.
 */
export function loadEdgeRpcs(expect: EdgeExpectations = PARLEY_EDGE, protoDir = PROTO_DIR): { rpcs: Rpc[]; unrouted: string[] } {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => (isAbsolute(target) ? target : join(protoDir, target));
  const files = readdirSync(protoDir, { recursive: true, encoding: "utf8" }).filter((f) => f.endsWith(".proto"));
  root.loadSync(
    files.map((f) => join(protoDir, f)),
    { keepCase: true },
  );
  const rpcs: Rpc[] = [];
  for (const [service, cluster] of Object.entries(expect.services)) {
    for (const method of root.lookupService(service).methodsArray) {
      const streaming = Boolean(method.requestStream || method.responseStream);
      rpcs.push({ path: `/${service}/${method.name}`, cluster, service, streaming });
    }
  }
  const unrouted = new Set(expect.unrouted);
  for (const [path, { cluster }] of Object.entries(expect.methods)) {
    const [, service, name] = path.split("/");
    const found = root.lookup(service);
    const methods = found instanceof protobuf.Service ? found.methodsArray : [];
    const method = methods.find((m) => m.name === name);
    rpcs.push({ path, cluster, service, streaming: Boolean(method?.requestStream || method?.responseStream) });
    for (const other of methods) if (other.name !== name) unrouted.add(`/${service}/${other.name}`);
  }
  for (const rpc of rpcs) unrouted.delete(rpc.path);
  return { rpcs, unrouted: [...unrouted] };
}

/** Problems with Parley's own requirements; the config is assumed to have passed the proto walk. */
export function checkParleyEdge(config: unknown, expect: EdgeExpectations = PARLEY_EDGE): Problem[] {
  const problems: Problem[] = [];
  const report = (path: string, message: string) => problems.push({ path, message });

  const admin = get(get(get(config, "admin"), "address"), "socket_address");
  const adminAddress = get(admin, "address");
  if (admin !== undefined && !isLoopback(adminAddress)) {
    report("admin.address.socket_address.address", `the admin API must listen on loopback only (127.0.0.1), not ${String(adminAddress)}`);
  }

  const clusters = list(get(get(config, "static_resources"), "clusters"));
  const clusterIndex = new Map<string, number>();
  clusters.forEach((c, i) => {
    const name = String(get(c, "name"));
    if (clusterIndex.has(name)) report(`static_resources.clusters[${i}].name`, `duplicate cluster name "${name}"`);
    clusterIndex.set(name, i);
  });

  const managers = findConnectionManagers(config);
  if (managers.length === 0) report("static_resources.listeners", "no listener has an HttpConnectionManager");
  const { rpcs, unrouted } = loadEdgeRpcs(expect);
  for (const { hcm, path } of managers) checkConnectionManager(hcm, path, rpcs, unrouted, clusterIndex, expect, report);

  const upstreams: Array<[string, string, string]> = [
    ...Object.entries(expect.services).map(([service, cluster]): [string, string, string] => [cluster, service, service]),
    ...Object.entries(expect.methods).map(([path, { cluster, healthService }]): [string, string, string] => [cluster, path, healthService]),
  ];
  for (const [cluster, what, healthService] of upstreams) {
    const i = clusterIndex.get(cluster);
    if (i === undefined) report("static_resources.clusters", `no cluster "${cluster}" for ${what}`);
    else checkCluster(clusters[i], `static_resources.clusters[${i}]`, cluster, healthService, expect, report);
  }
  const pageIndex = clusterIndex.get(expect.page.cluster);
  if (pageIndex === undefined) report("static_resources.clusters", `no cluster "${expect.page.cluster}" for the browser app's page`);
  else checkPageCluster(clusters[pageIndex], `static_resources.clusters[${pageIndex}]`, expect, report);
  return problems;
}

/** The page's cluster: every chat pod (STRICT_DNS on the headless Service) on WEB_PORT, plain HTTP/1.1, health-checked on `/`. */
function checkPageCluster(cluster: unknown, path: string, expect: EdgeExpectations, report: Report): void {
  if (get(cluster, "type") !== "STRICT_DNS") report(childPath(path, "type"), "must be STRICT_DNS, so every chat pod serves the page");
  const http = get(get(get(cluster, "typed_extension_protocol_options"), UPSTREAM_HTTP_OPTIONS), "explicit_http_config");
  if (isObject(get(http, "http2_protocol_options"))) {
    report(childPath(path, "typed_extension_protocol_options"), "the web server speaks HTTP/1.1 only: no http2_protocol_options");
  }
  const checks = list(get(cluster, "health_checks"));
  if (!checks.some((c) => get(get(c, "http_health_check"), "path") === "/")) {
    report(childPath(path, "health_checks"), 'needs an http_health_check on "/", so a pod whose web server is down gets no page requests');
  }
  const endpointsPath = `${path}.load_assignment.endpoints`;
  const sockets = list(get(get(cluster, "load_assignment"), "endpoints")).flatMap((e, i) =>
    list(get(e, "lb_endpoints")).map((lb, j) => ({
      at: `${endpointsPath}[${i}].lb_endpoints[${j}].endpoint.address.socket_address`,
      socket: get(get(get(lb, "endpoint"), "address"), "socket_address"),
    })),
  );
  if (sockets.length === 0) report(endpointsPath, "no endpoint to resolve");
  for (const { at, socket } of sockets) {
    if (get(socket, "address") !== expect.page.upstreamHost) report(`${at}.address`, `must be ${expect.page.upstreamHost}`);
    if (Number(get(socket, "port_value")) !== expect.page.port) report(`${at}.port_value`, `must be ${expect.page.port}, the chat pods' WEB_PORT`);
  }
}

type Report = (path: string, message: string) => void;

function checkConnectionManager(
  hcm: unknown,
  path: string,
  rpcs: Rpc[],
  unrouted: string[],
  clusterIndex: Map<string, number>,
  expect: EdgeExpectations,
  report: Report,
): void {
  const codec = get(hcm, "codec_type");
  if (codec !== undefined && codec !== "AUTO") {
    report(childPath(path, "codec_type"), "codec_type must be AUTO: gRPC-web arrives over HTTP/1.1, native gRPC over h2");
  }

  const filters = list(get(hcm, "http_filters"));
  const types = filters.map((f) => typeName(get(f, "typed_config")));
  if (types.join() !== FILTER_ORDER.join()) {
    report(
      childPath(path, "http_filters"),
      `http_filters must be grpc_web → cors → router (by @type), got ${types.map((t) => t ?? "?").join(" → ")}`,
    );
  }
  const filterNames = new Set(filters.map((f) => get(f, "name")));
  const corsFilter = filters.find((f) => typeName(get(f, "typed_config")) === FILTER_ORDER[1]);
  const corsName = get(corsFilter, "name");

  const routeConfigPath = childPath(path, "route_config");
  const hosts = list(get(get(hcm, "route_config"), "virtual_hosts"));
  if (hosts.length === 0) {
    report(routeConfigPath, "needs an inline route_config with virtual_hosts");
    return;
  }
  const hostIndex = hosts.findIndex((h) => list(get(h, "domains")).includes("*"));
  if (hostIndex < 0) {
    report(routeConfigPath, 'needs a virtual host with domains ["*"]: clients reach the edge by many names');
    return;
  }

  hosts.forEach((host, h) => {
    const hostPath = `${routeConfigPath}.virtual_hosts[${h}]`;
    checkPerFilterKeys(host, hostPath, filterNames, report);
    const hostCors = corsPolicy(host, corsName);
    if (hostCors) checkCors(hostCors, `${hostPath}.typed_per_filter_config[${JSON.stringify(corsName)}]`, expect, report);
    list(get(host, "routes")).forEach((route, r) => {
      const routePath = `${hostPath}.routes[${r}]`;
      checkPerFilterKeys(route, routePath, filterNames, report);
      const routeCors = corsPolicy(route, corsName);
      if (routeCors) checkCors(routeCors, `${routePath}.typed_per_filter_config[${JSON.stringify(corsName)}]`, expect, report);
      if (!hostCors && !routeCors) report(routePath, "no CORS policy (typed_per_filter_config of the cors filter): browsers could not call it");
      const cluster = get(get(route, "route"), "cluster");
      if (typeof cluster === "string" && !clusterIndex.has(cluster)) {
        report(`${routePath}.route.cluster`, `no cluster named "${cluster}" in static_resources.clusters`);
      }
    });
  });

  const host = hosts[hostIndex];
  const hostPath = `${routeConfigPath}.virtual_hosts[${hostIndex}]`;
  for (const page of expect.page.paths) {
    const r = list(get(host, "routes")).findIndex((route) => matches(get(route, "match"), page));
    const cluster = get(get(list(get(host, "routes"))[r], "route"), "cluster");
    if (r < 0) report(childPath(hostPath, "routes"), `no route for the page's ${page}`);
    else if (cluster !== expect.page.cluster) {
      report(
        `${hostPath}.routes[${r}].route.cluster`,
        `the page's ${page} must go to cluster "${expect.page.cluster}", goes to ${JSON.stringify(cluster)}`,
      );
    }
  }
  for (const inside of unrouted) {
    const r = list(get(host, "routes")).findIndex((route) => matches(get(route, "match"), inside));
    if (r >= 0) report(`${hostPath}.routes[${r}]`, `routes ${inside}, which is for callers inside the cluster only: no route may match it`);
  }
  const streamIdle = durationSeconds(get(hcm, "stream_idle_timeout")) ?? 300;
  for (const rpc of rpcs) {
    const r = list(get(host, "routes")).findIndex((route) => matches(get(route, "match"), rpc.path));
    if (r < 0) {
      report(childPath(hostPath, "routes"), `no route for ${rpc.path}`);
      continue;
    }
    const action = get(list(get(host, "routes"))[r], "route");
    const at = `${hostPath}.routes[${r}].route`;
    if (get(action, "cluster") !== rpc.cluster) {
      report(`${at}.cluster`, `${rpc.path} must go to cluster "${rpc.cluster}", goes to ${JSON.stringify(get(action, "cluster"))}`);
    }
    const timeout = durationSeconds(get(action, "timeout"));
    if (rpc.streaming && timeout !== 0) {
      report(
        `${at}.timeout`,
        `${rpc.path} streams: its route needs timeout: 0s (${timeout === undefined ? "the default 15s" : `${timeout}s`} would cut every stream)`,
      );
    }
    if (!rpc.streaming && timeout === 0) report(`${at}.timeout`, `${rpc.path} is unary: give its route a finite timeout`);
    const idle = durationSeconds(get(action, "idle_timeout")) ?? streamIdle;
    if (rpc.streaming && idle !== 0 && idle <= expect.minStreamIdleSeconds) {
      report(
        `${at}.idle_timeout`,
        `${rpc.path}: idle timeout ${idle}s must exceed ${expect.minStreamIdleSeconds}s (client ping 20 s, server keepalive 60 s)`,
      );
    }
  }
}

function checkCors(policy: unknown, path: string, expect: EdgeExpectations, report: Report): void {
  const headers = (key: string) =>
    new Set(
      String(get(policy, key) ?? "")
        .split(",")
        .map((h) => h.trim().toLowerCase()),
    );
  const exposed = headers("expose_headers");
  const missingExposed = expect.corsExposeHeaders.filter((h) => !exposed.has(h));
  if (missingExposed.length)
    report(childPath(path, "expose_headers"), `must expose ${missingExposed.join(", ")} so gRPC-web clients can read the status`);
  const allowed = headers("allow_headers");
  const missingAllowed = expect.corsAllowHeaders.filter((h) => !allowed.has(h));
  if (missingAllowed.length) report(childPath(path, "allow_headers"), `must allow ${missingAllowed.join(", ")} (sent by gRPC-web clients)`);
  const methods = headers("allow_methods");
  if (!methods.has("post") || !methods.has("options")) report(childPath(path, "allow_methods"), "must allow POST and OPTIONS");
  if (list(get(policy, "allow_origin_string_match")).length === 0) report(childPath(path, "allow_origin_string_match"), "allows no origin");
}

function checkCluster(cluster: unknown, path: string, name: string, service: string, expect: EdgeExpectations, report: Report): void {
  const type = get(cluster, "type") ?? "STATIC";
  if (type !== "STRICT_DNS") {
    report(childPath(path, "type"), `must be STRICT_DNS so each pod behind the headless Service becomes a host, not ${String(type)}`);
  }
  const lb = get(cluster, "lb_policy") ?? "ROUND_ROBIN";
  if (lb !== "ROUND_ROBIN" && lb !== "LEAST_REQUEST") report(childPath(path, "lb_policy"), `must be ROUND_ROBIN or LEAST_REQUEST, not ${String(lb)}`);

  const optionsPath = childPath(path, "typed_extension_protocol_options");
  const options = get(get(cluster, "typed_extension_protocol_options"), UPSTREAM_HTTP_OPTIONS);
  if (typeName(options) !== UPSTREAM_HTTP_OPTIONS || !isObject(get(get(options, "explicit_http_config"), "http2_protocol_options"))) {
    report(optionsPath, `gRPC needs HTTP/2 upstream: set ${UPSTREAM_HTTP_OPTIONS} with explicit_http_config.http2_protocol_options`);
  }

  const checks = list(get(cluster, "health_checks"));
  const grpcIndex = checks.findIndex((c) => isObject(get(c, "grpc_health_check")));
  if (grpcIndex < 0) {
    report(childPath(path, "health_checks"), "needs a grpc_health_check, so a draining pod (NOT_SERVING) gets no new streams");
  } else {
    const serviceName = get(get(checks[grpcIndex], "grpc_health_check"), "service_name");
    if (serviceName !== service) {
      report(
        `${path}.health_checks[${grpcIndex}].grpc_health_check.service_name`,
        `must be ${service} (what the pod marks NOT_SERVING when draining), not ${JSON.stringify(serviceName)}`,
      );
    }
  }

  const endpointsPath = `${path}.load_assignment.endpoints`;
  const addresses = list(get(get(cluster, "load_assignment"), "endpoints")).flatMap((e, i) =>
    list(get(e, "lb_endpoints")).map((lb, j) => ({
      at: `${endpointsPath}[${i}].lb_endpoints[${j}].endpoint.address.socket_address`,
      socket: get(get(get(lb, "endpoint"), "address"), "socket_address"),
    })),
  );
  if (addresses.length === 0) report(endpointsPath, "no endpoint to resolve");
  for (const { at, socket } of addresses) {
    if (get(socket, "address") !== expect.upstreamHost(name)) {
      report(`${at}.address`, `must be the headless Service ${expect.upstreamHost(name)}, not ${JSON.stringify(get(socket, "address"))}`);
    }
    if (Number(get(socket, "port_value")) !== expect.upstreamPort) report(`${at}.port_value`, `must be ${expect.upstreamPort}`);
  }
}

/** typed_per_filter_config is keyed by filter name; a key naming no filter is dead config. */
function checkPerFilterKeys(node: unknown, path: string, filterNames: Set<unknown>, report: Report): void {
  const perFilter = get(node, "typed_per_filter_config");
  if (!isObject(perFilter)) return;
  for (const key of Object.keys(perFilter)) {
    if (!filterNames.has(key)) report(`${path}.typed_per_filter_config[${JSON.stringify(key)}]`, `no http filter is named "${key}"`);
  }
}

function findConnectionManagers(config: unknown): { hcm: unknown; path: string }[] {
  const found: { hcm: unknown; path: string }[] = [];
  for (const [l, listener] of list(get(get(config, "static_resources"), "listeners")).entries()) {
    for (const [c, chain] of list(get(listener, "filter_chains")).entries()) {
      for (const [f, filter] of list(get(chain, "filters")).entries()) {
        const typed = get(filter, "typed_config");
        if (typeName(typed) === HCM)
          found.push({ hcm: typed, path: `static_resources.listeners[${l}].filter_chains[${c}].filters[${f}].typed_config` });
      }
    }
  }
  return found;
}

/** Envoy's route matching, for the match kinds a gRPC edge uses (headers are not considered). */
function matches(match: unknown, path: string): boolean {
  const prefix = get(match, "prefix");
  if (typeof prefix === "string") return path.startsWith(prefix);
  const exact = get(match, "path");
  if (typeof exact === "string") return path === exact;
  const separated = get(match, "path_separated_prefix");
  if (typeof separated === "string") return path === separated || path.startsWith(`${separated}/`);
  const regex = get(get(match, "safe_regex"), "regex");
  if (typeof regex !== "string") return false;
  try {
    return new RegExp(`^(?:${regex})$`).test(path);
  } catch {
    return false; // RE2 syntax JavaScript cannot read: treat as no match
  }
}

function corsPolicy(node: unknown, corsName: unknown): unknown {
  const policy = typeof corsName === "string" ? get(get(node, "typed_per_filter_config"), corsName) : undefined;
  return typeName(policy) === CORS_POLICY ? policy : undefined;
}

function typeName(any: unknown): string | undefined {
  const url = get(any, "@type");
  return typeof url === "string" && url.startsWith(TYPE_PREFIX) ? url.slice(TYPE_PREFIX.length) : undefined;
}

function durationSeconds(value: unknown): number | undefined {
  const nanos = parseDuration(value);
  return nanos === undefined ? undefined : Number(nanos) / 1e9;
}

function isLoopback(address: unknown): boolean {
  if (address === "localhost" || address === "::1") return true;
  return typeof address === "string" && isIP(address) === 4 && address.startsWith("127.");
}

/** A field by its proto name or its JSON name; undefined on anything that is not an object. */
function get(node: unknown, name: string): unknown {
  if (!isObject(node)) return undefined;
  return node[name] ?? node[name.replace(/_(.)/g, (_, c: string) => c.toUpperCase())];
}

function list(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
