// Parley's own rules for the rendered manifests: what a schema cannot know.
// This file holds the entry point and the checks that hold for every object
// (namespace, selectors, references, resources); the servers, the edge and the
// autoscalers have a file each.
import type { IContainer } from "kubernetes-models/v1/Container";
import type { IService } from "kubernetes-models/v1/Service";
import { allContainers, Manifests, NAMESPACE, nameOf } from "./k8s-manifests.js";
import { describe, type K8sObject } from "./k8s-models.js";
import { selects, type LabelSelector } from "./k8s-network.js";
import { checkEdge } from "./k8s-rules-edge.js";
import { checkScraping } from "./k8s-rules-metrics.js";
import { checkAutoscaling, type Autoscaler } from "./k8s-rules-scaling.js";
import { checkServers } from "./k8s-rules-servers.js";

/** What one rendered overlay must contain beyond the base. */
export interface Expectations {
  /** The autoscaler this overlay brings: KEDA's ScaledObject, the bundled controller, or none (the base). */
  autoscaler: Autoscaler;
  /** The text of envoy/envoy.yaml, which the Envoy ConfigMap must carry unchanged. */
  envoyConfig: string;
  /** Whether the overlay brings the Prometheus operator's ServiceMonitors, which must then scrape every Parley pod once. */
  serviceMonitors: boolean;
}

/**
 * Runs every Parley rule over one rendered overlay and returns the problems,
 * each naming the object (`Kind/name`) it is about. The objects may have
 * failed their schemas too; the rules never throw.
 */
export function checkParleyRules(objects: K8sObject[], expect: Expectations): string[] {
  const m = new Manifests(objects);
  const groups: Array<[string, () => string[]]> = [
    ["metadata", () => checkMetadata(m)],
    ["workload", () => checkWorkloads(m)],
    ["Service", () => checkServiceSelectors(m)],
    ["server", () => checkServers(m)],
    ["edge", () => checkEdge(m, expect.envoyConfig)],
    ["autoscaling", () => checkAutoscaling(m, expect.autoscaler)],
    ["scraping", () => checkScraping(m, { serviceMonitors: expect.serviceMonitors })],
  ];
  return groups.flatMap(([name, run]) => {
    // The rules read the objects as their schemas describe them; on data of the
    // wrong shape they may throw. That is a problem to report, beside the schema's.
    try {
      return run();
    } catch (err) {
      return [`the ${name} rules could not finish (${err instanceof Error ? err.message : String(err)}); fix the schema problems first`];
    }
  });
}

/** Every object has a name and sits in the one namespace. */
function checkMetadata(m: Manifests): string[] {
  const problems = m.named("Namespace", NAMESPACE) ? [] : [`Namespace/${NAMESPACE} is missing`];
  for (const object of m.objects) {
    if (nameOf(object) === "?") problems.push(`${describe(object)}: metadata.name is missing`);
    if (object.kind === "Namespace") continue;
    const namespace = (object.metadata as { namespace?: unknown } | undefined)?.namespace;
    if (namespace !== NAMESPACE) problems.push(`${describe(object)}: namespace is ${JSON.stringify(namespace)}, not "${NAMESPACE}"`);
  }
  return problems;
}

/**
 * Selectors are non-empty and match their templates; every container names an
 * image and has requests and limits; a container that serves a port has
 * readiness and liveness probes; and what pods refer to exists.
 */
function checkWorkloads(m: Manifests): string[] {
  const problems: string[] = [];
  for (const w of m.workloads) {
    const at = `${w.kind}/${w.name}`;
    const selector = (w.object as { spec?: { selector?: LabelSelector } }).spec?.selector;
    const empty = Object.keys(selector?.matchLabels ?? {}).length + (selector?.matchExpressions ?? []).length === 0;
    if (w.kind !== "Job" && empty) problems.push(`${at}: spec.selector is empty`);
    else if (w.kind !== "Job" && !selects(selector, w.podLabels)) problems.push(`${at}: spec.selector does not select its own pod template`);
    for (const c of w.pod.containers) {
      // A container that only exposes metrics (the controller) serves no traffic to probe for.
      if ((c.ports ?? []).filter((p) => p.name !== "metrics").length === 0) continue;
      if (!c.readinessProbe) problems.push(`${at} container ${c.name}: serves a port but has no readinessProbe`);
      if (!c.livenessProbe) problems.push(`${at} container ${c.name}: serves a port but has no livenessProbe`);
    }
    for (const c of allContainers(w.pod)) {
      for (const kind of ["readinessProbe", "livenessProbe", "startupProbe"] as const) {
        const probe = c[kind];
        if (probe && oneOf(probe, ["exec", "httpGet", "tcpSocket", "grpc"]) !== 1)
          problems.push(`${at} container ${c.name}: ${kind} needs exactly one of exec, httpGet, tcpSocket, grpc`);
      }
      for (const env of c.env ?? []) {
        if (env.valueFrom && oneOf(env.valueFrom, ["fieldRef", "resourceFieldRef", "secretKeyRef", "configMapKeyRef"]) !== 1) {
          problems.push(`${at} container ${c.name}: env ${env.name} needs exactly one valueFrom source`);
        }
      }
    }
    const volumes = new Set([...(w.pod.volumes ?? []).map((v) => v.name), ...volumeClaimNames(w.object)]);
    for (const c of allContainers(w.pod)) {
      if (!c.image) problems.push(`${at} container ${c.name}: no image`);
      problems.push(...resourceProblems(`${at} container ${c.name}`, c));
      for (const mount of c.volumeMounts ?? []) {
        if (!volumes.has(mount.name)) problems.push(`${at} container ${c.name}: mounts unknown volume "${mount.name}"`);
      }
      for (const env of c.env ?? []) {
        const ref = env.valueFrom?.secretKeyRef ?? env.valueFrom?.configMapKeyRef;
        if (!ref) continue;
        const kind = env.valueFrom?.secretKeyRef ? "Secret" : "ConfigMap";
        if (!hasKey(m.named<K8sObject>(kind, ref.name ?? ""), ref.key)) {
          problems.push(`${at} container ${c.name}: env ${env.name} refers to ${kind}/${ref.name} key "${ref.key}", which does not exist`);
        }
      }
    }
    for (const volume of w.pod.volumes ?? []) {
      const [kind, name] = volume.configMap ? ["ConfigMap", volume.configMap.name] : volume.secret ? ["Secret", volume.secret.secretName] : [];
      if (kind && !m.named(kind, name ?? "")) problems.push(`${at}: volume ${volume.name} refers to missing ${kind}/${name}`);
    }
  }
  return problems;
}

/** How many of `keys` are set on `object`. */
function oneOf(object: object, keys: string[]): number {
  return keys.filter((k) => (object as Record<string, unknown>)[k] !== undefined).length;
}

function volumeClaimNames(object: K8sObject): string[] {
  const claims = (object as { spec?: { volumeClaimTemplates?: Array<{ metadata?: { name?: string } }> } }).spec?.volumeClaimTemplates ?? [];
  return claims.map((c) => c.metadata?.name ?? "");
}

function hasKey(object: K8sObject | undefined, key: string): boolean {
  if (!object) return false;
  return [object.data, object.stringData].some((d) => typeof d === "object" && d !== null && Object.hasOwn(d, key));
}

/** cpu and memory, both requested and limited, requests no higher than limits. */
function resourceProblems(at: string, container: IContainer): string[] {
  const problems: string[] = [];
  for (const resource of ["cpu", "memory"]) {
    const request = container.resources?.requests?.[resource];
    const limit = container.resources?.limits?.[resource];
    if (request === undefined) problems.push(`${at}: no ${resource} request`);
    if (limit === undefined) problems.push(`${at}: no ${resource} limit`);
    if (request !== undefined && limit !== undefined && quantity(request) > quantity(limit)) {
      problems.push(`${at}: ${resource} request ${request} is above its limit ${limit}`);
    }
  }
  return problems;
}

const SUFFIXES: Record<string, number> = { m: 1e-3, "": 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40 };

/** A Kubernetes quantity ("250m", "1Gi", 2) as a number; NaN when it is not one. */
export function quantity(value: string | number): number {
  if (typeof value === "number") return value;
  const match = /^(\d+(?:\.\d+)?)(m|k|M|G|T|Ki|Mi|Gi|Ti)?$/.exec(value);
  return match ? Number(match[1]) * SUFFIXES[match[2] ?? ""] : Number.NaN;
}

/** Every Service selects some pods (none is backed by hand-made Endpoints), and its named target ports exist on them. */
function checkServiceSelectors(m: Manifests): string[] {
  const problems: string[] = [];
  for (const service of m.ofKind<IService & K8sObject>("Service")) {
    const selector = service.spec?.selector;
    if (!selector || Object.keys(selector).length === 0) {
      problems.push(`${describe(service)}: has no selector`);
      continue;
    }
    const pods = m.selected({ matchLabels: selector });
    if (pods.length === 0) {
      problems.push(`${describe(service)}: its selector matches no pods`);
      continue;
    }
    for (const port of service.spec?.ports ?? []) {
      if (typeof port.targetPort !== "string") continue;
      const named = pods.every((w) => allContainers(w.pod).some((c) => (c.ports ?? []).some((p) => p.name === port.targetPort)));
      if (!named) problems.push(`${describe(service)}: targetPort "${port.targetPort}" is not a container port name on every selected pod`);
    }
  }
  return problems;
}
