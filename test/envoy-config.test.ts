// envoy/envoy.yaml, checked offline against Envoy's own v3 protos and
// Parley's edge rules (scripts/validate/envoy.ts). The real file must be
// clean, and each kind of mistake, made on a copy, must be reported at the
// path where it was made. Needs no database and no Envoy binary.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import test from "ava";
import { loadEdgeRpcs, PARLEY_EDGE } from "../scripts/validate/envoy-rules.js";
import { ENVOY_CORS_POLICY } from "../services/web/cors-policy.js";
import { formatProblem, readEnvoyConfig, validateEnvoyConfig, type Problem } from "../scripts/validate/envoy.js";

const CONFIG_FILE = fileURLToPath(new URL("../envoy/envoy.yaml", import.meta.url));
const original = readEnvoyConfig(CONFIG_FILE);

const HCM = "static_resources.listeners[0].filter_chains[0].filters[0].typed_config";
const VHOST = `${HCM}.route_config.virtual_hosts[0]`;
const CORS = `${VHOST}.typed_per_filter_config["envoy.filters.http.cors"]`;
const ROUTES = `${VHOST}.routes`;
const AUTH = "static_resources.clusters[0]";
const CHAT = "static_resources.clusters[1]";
const WEB = "static_resources.clusters[2]";
const SCALER = "static_resources.clusters[3]";

/** A copy of the real config with one change made to it. */
function broken(change: (config: any) => void): unknown {
  const copy = structuredClone(original) as any;
  change(copy);
  return copy;
}

function hcm(config: any): any {
  return config.static_resources.listeners[0].filter_chains[0].filters[0].typed_config;
}

function routes(config: any): any[] {
  return hcm(config).route_config.virtual_hosts[0].routes;
}

function listing(problems: Problem[]): string {
  return problems.map(formatProblem).join("\n") || "(no problems)";
}

test("envoy/envoy.yaml has no problems", (t) => {
  const problems = validateEnvoyConfig(original);
  t.deepEqual(problems, [], listing(problems));
});

test("proto JSON names are accepted like the proto field names", (t) => {
  const config = broken((c) => {
    const manager = hcm(c);
    manager.statPrefix = manager.stat_prefix;
    delete manager.stat_prefix;
    c.static_resources.clusters[0].connectTimeout = c.static_resources.clusters[0].connect_timeout;
    delete c.static_resources.clusters[0].connect_timeout;
  });
  t.deepEqual(validateEnvoyConfig(config), []);
});

interface Case {
  title: string;
  change: (config: any) => void;
  path: string;
  message: RegExp;
}

const cases: Case[] = [
  {
    title: "an unknown key deep inside a cluster",
    change: (c) => (c.static_resources.clusters[1].health_checks[0].grpc_health_check.service_nam = "x"),
    path: `${CHAT}.health_checks[0].grpc_health_check.service_nam`,
    message: /unknown field "service_nam" in envoy\.config\.core\.v3\.HealthCheck\.GrpcHealthCheck/,
  },
  {
    title: "an unknown key inside an Any (the CorsPolicy)",
    change: (c) => (hcm(c).route_config.virtual_hosts[0].typed_per_filter_config["envoy.filters.http.cors"].expose_header = "grpc-status"),
    path: `${CORS}.expose_header`,
    message: /unknown field "expose_header" in envoy\.extensions\.filters\.http\.cors\.v3\.CorsPolicy/,
  },
  {
    title: "an unknown key in an extension loaded on demand (the access logger)",
    change: (c) => (hcm(c).access_log[0].typed_config.log_fromat = {}),
    path: `${HCM}.access_log[0].typed_config.log_fromat`,
    message: /unknown field "log_fromat" in envoy\.extensions\.access_loggers\.stream\.v3\.StdoutAccessLog/,
  },
  {
    title: "a misspelled @type",
    change: (c) => (hcm(c).http_filters[1].typed_config["@type"] = "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Corz"),
    path: `${HCM}.http_filters[1].typed_config["@type"]`,
    message: /unknown type "envoy\.extensions\.filters\.http\.cors\.v3\.Corz"/,
  },
  {
    title: "a wrong enum name",
    change: (c) => (c.static_resources.clusters[0].lb_policy = "ROUND_ROBBIN"),
    path: `${AUTH}.lb_policy`,
    message: /"ROUND_ROBBIN" is not a value of envoy\.config\.cluster\.v3\.Cluster\.LbPolicy/,
  },
  {
    title: "a bad duration",
    change: (c) => (routes(c)[2].route.timeout = "15 seconds"),
    path: `${ROUTES}[2].route.timeout`,
    message: /expected a duration/,
  },
  {
    title: "a duration written as a bare number",
    change: (c) => (c.static_resources.clusters[1].connect_timeout = 2),
    path: `${CHAT}.connect_timeout`,
    message: /expected a duration such as "1\.5s", got 2/,
  },
  {
    title: "a wrapper (BoolValue) given a string",
    change: (c) => (hcm(c).route_config.virtual_hosts[0].typed_per_filter_config["envoy.filters.http.cors"].allow_credentials = "no"),
    path: `${CORS}.allow_credentials`,
    message: /expected true or false/,
  },
  {
    title: "a port that is not a number",
    change: (c) => (c.static_resources.listeners[0].address.socket_address.port_value = "eighty"),
    path: "static_resources.listeners[0].address.socket_address.port_value",
    message: /expected an integer \(uint32\)/,
  },
  {
    title: "a field Envoy requires (protoc-gen-validate) left out",
    change: (c) => delete c.static_resources.clusters[0].health_checks[0].unhealthy_threshold,
    path: `${AUTH}.health_checks[0].unhealthy_threshold`,
    message: /"unhealthy_threshold" is required/,
  },
  {
    title: "two members of a oneof",
    change: (c) => (routes(c)[0].match.prefix = "/parley.chat.v1.ChatService/"),
    path: `${ROUTES}[0].match`,
    message: /only one of prefix, path may be set/,
  },
  {
    title: "the deprecated route-level cors policy",
    change: (c) => (routes(c)[2].route.cors = { allow_methods: "POST" }),
    path: `${ROUTES}[2].route.cors`,
    message: /deprecated/,
  },
  {
    title: "per-filter config for a filter that does not exist",
    change: (c) => (hcm(c).http_filters[1].name = "cors"),
    path: `${VHOST}.typed_per_filter_config["envoy.filters.http.cors"]`,
    message: /no http filter is named "envoy\.filters\.http\.cors"/,
  },
  {
    title: "swapped filter order",
    change: (c) => {
      const filters = hcm(c).http_filters;
      [filters[0], filters[1]] = [filters[1], filters[0]];
    },
    path: `${HCM}.http_filters`,
    message: /grpc_web → cors → router/,
  },
  {
    title: "a streaming route without timeout 0s",
    change: (c) => delete routes(c)[0].route.timeout,
    path: `${ROUTES}[0].route.timeout`,
    message: /\/parley\.chat\.v1\.ChatService\/Connect streams: its route needs timeout: 0s/,
  },
  {
    title: "a streaming RPC that falls through to the unary prefix route",
    change: (c) => routes(c).splice(1, 1),
    path: `${ROUTES}[1].route.timeout`,
    message: /\/parley\.chat\.v1\.ChatService\/Subscribe streams/,
  },
  {
    title: "a stream idle timeout below the heartbeat",
    change: (c) => (routes(c)[0].route.idle_timeout = "30s"),
    path: `${ROUTES}[0].route.idle_timeout`,
    message: /idle timeout 30s must exceed 60s/,
  },
  {
    title: "a service routed to the wrong cluster",
    change: (c) => (routes(c)[3].route.cluster = "chat"),
    path: `${ROUTES}[3].route.cluster`,
    message: /\/parley\.auth\.v1\.AuthService\/\w+ must go to cluster "auth"/,
  },
  {
    title: "CORS that hides grpc-message",
    change: (c) => (hcm(c).route_config.virtual_hosts[0].typed_per_filter_config["envoy.filters.http.cors"].expose_headers = "grpc-status"),
    path: `${CORS}.expose_headers`,
    message: /must expose grpc-message/,
  },
  {
    title: "the admin API on 0.0.0.0",
    change: (c) => (c.admin.address.socket_address.address = "0.0.0.0"),
    path: "admin.address.socket_address.address",
    message: /loopback/,
  },
  {
    title: "a cluster without health check",
    change: (c) => delete c.static_resources.clusters[1].health_checks,
    path: `${CHAT}.health_checks`,
    message: /needs a grpc_health_check/,
  },
  {
    title: "a health check for the wrong service",
    change: (c) => (c.static_resources.clusters[1].health_checks[0].grpc_health_check.service_name = "parley.auth.v1.AuthService"),
    path: `${CHAT}.health_checks[0].grpc_health_check.service_name`,
    message: /must be parley\.chat\.v1\.ChatService/,
  },
  {
    title: "a cluster that is not STRICT_DNS",
    change: (c) => (c.static_resources.clusters[0].type = "LOGICAL_DNS"),
    path: `${AUTH}.type`,
    message: /must be STRICT_DNS/,
  },
  {
    title: "a cluster speaking HTTP/1.1 upstream",
    change: (c) => {
      const options = c.static_resources.clusters[0].typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"];
      options.explicit_http_config = { http_protocol_options: {} };
    },
    path: `${AUTH}.typed_extension_protocol_options`,
    message: /gRPC needs HTTP\/2 upstream/,
  },
  {
    title: "a cluster resolving something other than the headless Service",
    change: (c) =>
      (c.static_resources.clusters[1].load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.address =
        "chat.parley.svc.cluster.local"),
    path: `${CHAT}.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.address`,
    message: /chat-headless\.parley\.svc\.cluster\.local/,
  },
  {
    title: "the page routed to the gRPC cluster",
    change: (c) => (routes(c).find((r) => r.match.path === "/app.js").route.cluster = "chat"),
    path: `${ROUTES}[7].route.cluster`,
    message: /the page's \/app\.js must go to cluster "web"/,
  },
  {
    title: "a page path without a route",
    change: (c) => {
      hcm(c).route_config.virtual_hosts[0].routes = routes(c).filter((r) => r.match.path !== "/app.css");
    },
    path: ROUTES,
    message: /no route for the page's \/app\.css/,
  },
  {
    title: "the page's cluster speaking HTTP/2 to the HTTP/1.1 web server",
    change: (c) =>
      (c.static_resources.clusters[2].typed_extension_protocol_options = {
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
          "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
          explicit_http_config: { http2_protocol_options: {} },
        },
      }),
    path: `${WEB}.typed_extension_protocol_options`,
    message: /HTTP\/1\.1 only/,
  },
  {
    title: "the page's cluster on the gRPC port",
    change: (c) => (c.static_resources.clusters[2].load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value = 50051),
    path: `${WEB}.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value`,
    message: /must be 8080, the chat pods' WEB_PORT/,
  },
  {
    title: "the ops dashboard's page without a route",
    change: (c) => {
      hcm(c).route_config.virtual_hosts[0].routes = routes(c).filter((r) => r.match.path !== "/ops");
    },
    path: ROUTES,
    message: /no route for the page's \/ops/,
  },
  {
    title: "the dashboard's GetClusterStatus without a route",
    change: (c) => {
      hcm(c).route_config.virtual_hosts[0].routes = routes(c).filter((r) => r.route?.cluster !== "scaler");
    },
    path: ROUTES,
    message: /no route for \/parley\.ops\.v1\.OpsService\/GetClusterStatus/,
  },
  {
    title: "GetClusterStatus routed to the chat pods",
    change: (c) => (routes(c).find((r) => r.route?.cluster === "scaler").route.cluster = "chat"),
    path: `${ROUTES}[4].route.cluster`,
    message: /\/parley\.ops\.v1\.OpsService\/GetClusterStatus must go to cluster "scaler"/,
  },
  {
    title: "the whole OpsService routed, so browsers could call the controller's RecordScalingDecision",
    change: (c) => (routes(c).find((r) => r.route?.cluster === "scaler").match = { prefix: "/parley.ops.v1.OpsService/" }),
    path: `${ROUTES}[4]`,
    message: /routes \/parley\.ops\.v1\.OpsService\/RecordScalingDecision, which is for callers inside the cluster only/,
  },
  {
    title: "a catch-all route that would send RecordScalingDecision to the web server",
    change: (c) => routes(c).push({ match: { prefix: "/" }, route: { cluster: "web", timeout: "15s" } }),
    path: `${ROUTES}[9]`,
    message: /routes \/parley\.ops\.v1\.OpsService\/RecordScalingDecision/,
  },
  {
    title: "no scaler cluster",
    change: (c) => c.static_resources.clusters.splice(3, 1),
    path: "static_resources.clusters",
    message: /no cluster "scaler" for \/parley\.ops\.v1\.OpsService\/GetClusterStatus/,
  },
  {
    title: "the scaler cluster health-checking a service the scaler pods do not host",
    change: (c) => (c.static_resources.clusters[3].health_checks[0].grpc_health_check.service_name = "parley.chat.v1.ChatService"),
    path: `${SCALER}.health_checks[0].grpc_health_check.service_name`,
    message: /must be externalscaler\.ExternalScaler/,
  },
  {
    title: "the scaler cluster resolving the ClusterIP Service, which pins connections to one pod",
    change: (c) =>
      (c.static_resources.clusters[3].load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.address =
        "scaler.parley.svc.cluster.local"),
    path: `${SCALER}.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.address`,
    message: /scaler-headless\.parley\.svc\.cluster\.local/,
  },
  {
    title: "the scaler cluster speaking HTTP/1.1",
    change: (c) => delete c.static_resources.clusters[3].typed_extension_protocol_options,
    path: `${SCALER}.typed_extension_protocol_options`,
    message: /gRPC needs HTTP\/2 upstream/,
  },
];

for (const { title, change, path, message } of cases) {
  test(`reports ${title}`, (t) => {
    const problems = validateEnvoyConfig(broken(change));
    const hit = problems.find((p) => p.path === path && message.test(p.message));
    t.truthy(hit, `expected a problem at ${path} matching ${message}, got:\n${listing(problems)}`);
  });
}

test("the embedded gateway's CORS policy is envoy.yaml's", (t) => {
  const policy = (original as any).static_resources.listeners[0].filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0]
    .typed_per_filter_config["envoy.filters.http.cors"];
  const regexes = policy.allow_origin_string_match.map((m: any) => m.safe_regex.regex);
  t.deepEqual(regexes, [".*"]);
  t.is(ENVOY_CORS_POLICY.allowOrigin.source, "^(?:.*)$");
  t.is(ENVOY_CORS_POLICY.allowMethods, policy.allow_methods);
  t.is(ENVOY_CORS_POLICY.allowHeaders, policy.allow_headers);
  t.is(ENVOY_CORS_POLICY.exposeHeaders, policy.expose_headers);
  t.is(ENVOY_CORS_POLICY.maxAge, policy.max_age);
  t.is(ENVOY_CORS_POLICY.allowCredentials, policy.allow_credentials);
});

test("a single routed method streams or not as its proto says, and its service's other methods stay unrouted", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "parley-edge-protos-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(
    join(dir, "ops.proto"),
    `syntax = "proto3";
package parley.ops.v1;
message Empty {}
service OpsService {
  rpc GetClusterStatus(Empty) returns (stream Empty);
  rpc RecordScalingDecision(Empty) returns (Empty);
  rpc ResetEverything(Empty) returns (Empty);
}
`,
  );
  const { rpcs, unrouted } = loadEdgeRpcs({ ...PARLEY_EDGE, services: {} }, dir);
  t.deepEqual(rpcs, [
    { path: "/parley.ops.v1.OpsService/GetClusterStatus", cluster: "scaler", service: "parley.ops.v1.OpsService", streaming: true },
  ]);
  t.deepEqual(unrouted.sort(), ["/parley.ops.v1.OpsService/RecordScalingDecision", "/parley.ops.v1.OpsService/ResetEverything"]);
  // Before the service is in proto/, the method is taken as unary and the listed paths stay unrouted.
  const empty = mkdtempSync(join(tmpdir(), "parley-edge-protos-"));
  t.teardown(() => rmSync(empty, { recursive: true, force: true }));
  const before = loadEdgeRpcs({ ...PARLEY_EDGE, services: {} }, empty);
  t.false(before.rpcs[0].streaming);
  t.deepEqual(before.unrouted, ["/parley.ops.v1.OpsService/RecordScalingDecision"]);
});
