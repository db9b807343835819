// Rules for the edge and the network: Envoy runs the repo's envoy/envoy.yaml
// unchanged, every upstream it names is a rendered headless Service, and the
// NetworkPolicies deny by default yet let each hop of the data flow through.
import type { INetworkPolicy } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicy";
import type { IConfigMap } from "kubernetes-models/v1/ConfigMap";
import type { IService } from "kubernetes-models/v1/Service";
import { parse } from "yaml";
import { GRPC_PORT, type Manifests, NAMESPACE, WEB_PORT } from "./k8s-manifests.js";
import { ingressAllowed, type Source } from "./k8s-network.js";

/** The key under which the Envoy ConfigMap carries the file. */
const ENVOY_FILE = "envoy.yaml";

/** Envoy and its upstreams (from the repo's envoy.yaml), then the NetworkPolicies hop by hop. */
export function checkEdge(m: Manifests, envoyConfig: string): string[] {
  let config: EnvoyConfig | undefined;
  try {
    config = parse(envoyConfig) as EnvoyConfig;
  } catch (err) {
    return [`envoy/envoy.yaml does not parse: ${err instanceof Error ? err.message : String(err)}`, ...networkProblems(m)];
  }
  return [...envoyDeploymentProblems(m, envoyConfig, config), ...upstreamProblems(m, config), ...networkProblems(m)];
}

/** The ConfigMap carries the file unchanged, Envoy mounts it and reads it, and a Service exposes every listener. */
function envoyDeploymentProblems(m: Manifests, envoyConfig: string, config: EnvoyConfig | undefined): string[] {
  const configMap = m.ofKind<IConfigMap>("ConfigMap").find((c) => c.data?.[ENVOY_FILE] !== undefined);
  if (!configMap) return [`no ConfigMap carries ${ENVOY_FILE}`];
  const at = `ConfigMap/${configMap.metadata?.name}`;
  const problems: string[] = [];
  const rendered = configMap.data?.[ENVOY_FILE] ?? "";
  if (rendered !== envoyConfig) problems.push(`${at}: ${ENVOY_FILE} differs from envoy/envoy.yaml ${firstDifference(rendered, envoyConfig)}`);

  const envoy = m.workload("Deployment", "envoy");
  if (!envoy) return [...problems, "Deployment/envoy is missing"];
  const volume = (envoy.pod.volumes ?? []).find((v) => v.configMap?.name === configMap.metadata?.name);
  const container = envoy.pod.containers[0];
  const mount = container?.volumeMounts?.find((v) => v.name === volume?.name);
  if (!volume || !mount) problems.push(`Deployment/envoy: does not mount ${at}`);
  else {
    const args = [...(container.command ?? []), ...(container.args ?? [])];
    const configPath = args.includes("-c") ? args[args.indexOf("-c") + 1] : undefined;
    if (configPath !== `${mount.mountPath.replace(/\/$/, "")}/${ENVOY_FILE}`) {
      problems.push(`Deployment/envoy: -c does not point at the mounted ${ENVOY_FILE} (${mount.mountPath})`);
    }
  }
  const services = m.ofKind<IService>("Service").filter((s) => s.spec?.selector && m.selected({ matchLabels: s.spec.selector }).includes(envoy));
  for (const listener of config?.static_resources?.listeners ?? []) {
    const port = listener.address?.socket_address?.port_value;
    if (port === undefined) continue;
    if (!(container?.ports ?? []).some((p) => p.containerPort === port))
      problems.push(`Deployment/envoy: listener port ${port} is not a container port`);
    if (!services.some((s) => (s.spec?.ports ?? []).some((p) => p.port === port))) problems.push(`no Service exposes Envoy's listener port ${port}`);
  }
  return problems;
}

/** Every upstream host Envoy resolves is a rendered Service with that port, headless where Envoy balances by DNS. */
function upstreamProblems(m: Manifests, config: EnvoyConfig | undefined): string[] {
  const problems: string[] = [];
  for (const cluster of config?.static_resources?.clusters ?? []) {
    for (const group of cluster.load_assignment?.endpoints ?? []) {
      for (const lb of group.lb_endpoints ?? []) {
        const socket = lb.endpoint?.address?.socket_address;
        if (!socket?.address || /^[\d.]+$|:|^localhost$/.test(socket.address)) continue;
        const what = `envoy/envoy.yaml cluster ${cluster.name}`;
        const found = m.serviceAddressProblems(what, socket.address, socket.port_value ?? 0);
        problems.push(...found);
        const name = socket.address.split(".")[0];
        if (found.length === 0 && cluster.type === "STRICT_DNS" && m.named<IService>("Service", name)?.spec?.clusterIP !== "None") {
          problems.push(`${what}: STRICT_DNS needs a headless Service, but Service/${name} has a cluster IP`);
        }
      }
    }
  }
  return problems;
}

interface SocketAddress {
  socket_address?: { address?: string; port_value?: number };
}
interface EnvoyConfig {
  static_resources?: {
    listeners?: Array<{ address?: SocketAddress }>;
    clusters?: Array<{
      name?: string;
      type?: string;
      load_assignment?: { endpoints?: Array<{ lb_endpoints?: Array<{ endpoint?: { address?: SocketAddress } }> }> };
    }>;
  };
}

function firstDifference(a: string, b: string): string {
  const left = a.split("\n");
  const right = b.split("\n");
  const line = left.findIndex((l, i) => l !== right[i]);
  return `(first at line ${(line === -1 ? left.length : line) + 1})`;
}

/**
 * A default deny, then every hop of the data flow allowed and a few hops that
 * must stay closed. Pods are named by their workload; a hop whose workload is
 * not rendered is skipped, because the server rules already report it missing.
 */
function networkProblems(m: Manifests): string[] {
  const policies = m.ofKind<INetworkPolicy>("NetworkPolicy");
  const problems: string[] = [];
  const denyAll = policies.some(
    (p) =>
      Object.keys(p.spec?.podSelector?.matchLabels ?? {}).length === 0 &&
      (p.spec?.podSelector?.matchExpressions ?? []).length === 0 &&
      (p.spec?.policyTypes ?? []).includes("Ingress") &&
      (p.spec?.ingress ?? []).length === 0,
  );
  if (!denyAll) problems.push("no NetworkPolicy denies ingress by default (podSelector {}, policyTypes [Ingress], no rules)");

  const namespace = m.named<{ metadata?: { labels?: Record<string, string> } }>("Namespace", NAMESPACE);
  const namespaceLabels = { ...namespace?.metadata?.labels, "kubernetes.io/metadata.name": NAMESPACE };
  const labelsOf = (name: string) => m.workloads.find((w) => w.name === name && w.kind !== "Job")?.podLabels;
  const pod = (name: string): Source | undefined => {
    const podLabels = labelsOf(name);
    return podLabels ? { namespaceLabels, podLabels } : undefined;
  };
  const keda: Source = { namespaceLabels: { "kubernetes.io/metadata.name": "keda" }, podLabels: { app: "keda-operator" } };
  const controller = m.workloads.find((w) => w.pod.containers.some((c) => (c.env ?? []).some((e) => e.name === "SCALER_ADDRESS")));

  type Hop = { from: string; source: Source | undefined; to: string; port: number; allowed: boolean };
  const hop = (from: string, source: Source | undefined, to: string, port: number, allowed = true): Hop => ({ from, source, to, port, allowed });
  const hops: Hop[] = [
    hop("clients outside the cluster", "outside", "envoy", 8080),
    hop("envoy", pod("envoy"), "auth", GRPC_PORT),
    hop("envoy", pod("envoy"), "chat", GRPC_PORT),
    hop("envoy", pod("envoy"), "chat", WEB_PORT),
    // The ops dashboard's one routed method (envoy/envoy.yaml's `scaler` cluster).
    hop("envoy", pod("envoy"), "scaler", GRPC_PORT),
    hop("clients outside the cluster", "outside", "chat", WEB_PORT, false),
    ...["auth", "chat", "scaler"].flatMap((s) => [hop(s, pod(s), "postgres", 5432), hop(s, pod(s), "redis", 6379)]),
    hop("KEDA (namespace keda)", keda, "scaler", GRPC_PORT),
    ...(controller ? [hop(controller.name, pod(controller.name), "scaler", GRPC_PORT)] : []),
    ...["auth", "chat", "scaler"].map((s) => hop("clients outside the cluster", "outside", s, GRPC_PORT, false)),
    hop("clients outside the cluster", "outside", "postgres", 5432, false),
    hop("clients outside the cluster", "outside", "redis", 6379, false),
    hop("envoy", pod("envoy"), "postgres", 5432, false),
    hop("envoy", pod("envoy"), "redis", 6379, false),
  ];
  for (const { from, source, to, port, allowed } of hops) {
    const podLabels = labelsOf(to);
    if (!source || !podLabels) continue;
    if (ingressAllowed(policies, namespaceLabels, source, { podLabels, port }) !== allowed) {
      problems.push(`NetworkPolicies ${allowed ? "block" : "allow"} ${from} → ${to}:${port}`);
    }
  }
  return problems;
}
