// Rules for scraping: Prometheus can scrape every Parley pod (auth, chat,
// scaler and the bundled controller) on METRICS_PORT, by the usual
// annotations or, with the Prometheus operator, by a ServiceMonitor, and the
// NetworkPolicies let the monitoring namespace reach that port and nothing else.
import type { IServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor";
import type { INetworkPolicy } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicy";
import type { IContainer } from "kubernetes-models/v1/Container";
import type { IService } from "kubernetes-models/v1/Service";
import { GRPC_PORT, type Manifests, NAMESPACE, type Workload } from "./k8s-manifests.js";
import { ingressAllowed, selects, type Source } from "./k8s-network.js";
import { resolveEnv } from "./k8s-rules-servers.js";

/** METRICS_PORT's default (design.md, "Runtime modes"), and the port every manifest uses. */
export const METRICS_PORT = 9464;
/** The container port's name, which the ServiceMonitors' endpoints and the Services' targetPorts use. */
const METRICS_PORT_NAME = "metrics";
/** Where Prometheus runs (k8s/base/network-policies.yaml): the namespace kube-prometheus-stack uses. */
const MONITORING_NAMESPACE = "monitoring";

/**
 * The annotations Prometheus' common Kubernetes scrape configs (and the
 * community Helm chart) honour on a pod: scrape it, on this port, at this path.
 */
const SCRAPE_ANNOTATIONS = {
  "prometheus.io/scrape": "true",
  "prometheus.io/port": String(METRICS_PORT),
  "prometheus.io/path": "/metrics",
} as const;

/** What scraping must cover; `serviceMonitors` when the overlay is the Prometheus operator's. */
export interface ScrapeExpectations {
  serviceMonitors: boolean;
}

/** Every Parley pod annotated and exposing its metrics port, policies that let only Prometheus in there, and the ServiceMonitors. */
export function checkScraping(m: Manifests, expect: ScrapeExpectations): string[] {
  const parley = parleyWorkloads(m);
  const problems = parley.flatMap(podProblems);
  problems.push(...networkProblems(m, parley));
  const monitors = m.ofKind<IServiceMonitor>("ServiceMonitor");
  if (expect.serviceMonitors && monitors.length === 0) problems.push("expected ServiceMonitors (the Prometheus operator's overlay), found none");
  problems.push(...monitors.flatMap((monitor) => monitorProblems(m, monitor)));
  if (expect.serviceMonitors) problems.push(...coverageProblems(m, parley, monitors));
  return problems;
}

/** The Deployments that run Parley's image: the servers and the controller (not Envoy, Postgres or Redis). */
function parleyWorkloads(m: Manifests): Workload[] {
  return m.workloads.filter((w) => w.kind === "Deployment" && w.pod.containers.some(isParley));
}

function isParley(container: IContainer): boolean {
  return /(^|\/)parley(:|@|$)/.test(container.image ?? "");
}

function podProblems(w: Workload): string[] {
  const at = `Deployment/${w.name}`;
  const problems: string[] = [];
  const annotations = (w.object as { spec?: { template?: { metadata?: { annotations?: Record<string, string> } } } }).spec?.template?.metadata
    ?.annotations;
  for (const [key, value] of Object.entries(SCRAPE_ANNOTATIONS)) {
    const found = annotations?.[key];
    if (found !== value) problems.push(`${at}: pod annotation ${key} is ${JSON.stringify(found)}, expected "${value}"`);
  }
  const container = w.pod.containers.find(isParley);
  if (!container) return problems;
  const port = (container.ports ?? []).find((p) => p.name === METRICS_PORT_NAME);
  if (port?.containerPort !== METRICS_PORT) {
    problems.push(`${at}: container ${container.name} does not declare port "${METRICS_PORT_NAME}" ${METRICS_PORT} (METRICS_PORT)`);
  }
  const env = resolveEnv(container).METRICS_PORT;
  if (env !== undefined && env !== String(METRICS_PORT)) {
    problems.push(`${at}: METRICS_PORT is "${env}", but the pod is scraped on ${METRICS_PORT}`);
  }
  return problems;
}

/** Prometheus (namespace monitoring) reaches each Parley pod's metrics port, and neither its gRPC port nor, from outside, the metrics. */
function networkProblems(m: Manifests, parley: Workload[]): string[] {
  const policies = m.ofKind<INetworkPolicy>("NetworkPolicy");
  const namespace = m.named<{ metadata?: { labels?: Record<string, string> } }>("Namespace", NAMESPACE);
  const namespaceLabels = { ...namespace?.metadata?.labels, "kubernetes.io/metadata.name": NAMESPACE };
  const prometheus: Source = {
    namespaceLabels: { "kubernetes.io/metadata.name": MONITORING_NAMESPACE },
    podLabels: { "app.kubernetes.io/name": "prometheus" },
  };
  const problems: string[] = [];
  for (const w of parley) {
    const hops: Array<[string, Source, number, boolean]> = [
      [`Prometheus (namespace ${MONITORING_NAMESPACE})`, prometheus, METRICS_PORT, true],
      [`Prometheus (namespace ${MONITORING_NAMESPACE})`, prometheus, GRPC_PORT, false],
      ["clients outside the cluster", "outside", METRICS_PORT, false],
    ];
    for (const [from, source, port, allowed] of hops) {
      if (ingressAllowed(policies, namespaceLabels, source, { podLabels: w.podLabels, port }) !== allowed) {
        problems.push(`NetworkPolicies ${allowed ? "block" : "allow"} ${from} → ${w.name}:${port}`);
      }
    }
  }
  return problems;
}

/** A monitor looks in Parley's namespace, selects a Service with a `metrics` port that leads to the pods' 9464, at /metrics. */
function monitorProblems(m: Manifests, monitor: IServiceMonitor): string[] {
  const at = `ServiceMonitor/${monitor.metadata?.name}`;
  const problems: string[] = [];
  const scope = monitor.spec?.namespaceSelector;
  if (scope?.any || (scope?.matchNames && !(scope.matchNames.length === 1 && scope.matchNames[0] === NAMESPACE))) {
    problems.push(`${at}: namespaceSelector reaches beyond namespace ${NAMESPACE}`);
  }
  const services = selectedServices(m, monitor);
  if (services.length === 0) problems.push(`${at}: its selector matches no Service`);
  for (const [i, endpoint] of (monitor.spec?.endpoints ?? []).entries()) {
    const where = `${at} endpoint ${i}`;
    if (endpoint.port !== METRICS_PORT_NAME) problems.push(`${where}: port is ${JSON.stringify(endpoint.port)}, expected "${METRICS_PORT_NAME}"`);
    if ((endpoint.path ?? "/metrics") !== "/metrics") problems.push(`${where}: path is "${endpoint.path}", expected "/metrics"`);
    if ((endpoint.scheme ?? "http") !== "http") problems.push(`${where}: scheme is "${endpoint.scheme}"; /metrics is plain HTTP`);
    for (const service of services) {
      const port = (service.spec?.ports ?? []).find((p) => p.name === endpoint.port);
      if (!port) {
        problems.push(`${where}: Service/${service.metadata?.name} has no port named ${JSON.stringify(endpoint.port)}`);
        continue;
      }
      for (const w of m.selected({ matchLabels: service.spec?.selector ?? {} })) {
        const target = port.targetPort ?? port.port;
        const reaches = w.pod.containers.some((c) =>
          (c.ports ?? []).some((p) => p.containerPort === METRICS_PORT && (p.name === target || p.containerPort === target)),
        );
        if (!reaches)
          problems.push(`${where}: Service/${service.metadata?.name} port ${port.name} does not lead to ${w.name}'s port ${METRICS_PORT}`);
      }
    }
  }
  return problems;
}

function selectedServices(m: Manifests, monitor: IServiceMonitor): IService[] {
  const selector = monitor.spec?.selector;
  const empty = Object.keys(selector?.matchLabels ?? {}).length + (selector?.matchExpressions ?? []).length === 0;
  if (empty) return [];
  return m.ofKind<IService>("Service").filter((s) => selects(selector, s.metadata?.labels ?? {}));
}

/** With the operator, every Parley pod is scraped exactly once: one monitor, one Service. */
function coverageProblems(m: Manifests, parley: Workload[], monitors: IServiceMonitor[]): string[] {
  const problems: string[] = [];
  for (const w of parley) {
    const routes = monitors.flatMap((monitor) =>
      selectedServices(m, monitor)
        .filter((s) => selects({ matchLabels: s.spec?.selector ?? {} }, w.podLabels))
        .map((s) => `ServiceMonitor/${monitor.metadata?.name} via Service/${s.metadata?.name}`),
    );
    if (routes.length === 0) problems.push(`Deployment/${w.name}: no ServiceMonitor scrapes its pods`);
    if (routes.length > 1) problems.push(`Deployment/${w.name}: its pods are scraped ${routes.length} times (${routes.join(", ")})`);
  }
  return problems;
}
