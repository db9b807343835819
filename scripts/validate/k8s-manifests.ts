// The rendered objects of one overlay, indexed for the rules, with the names
// every rule shares.
import type { IDeployment } from "kubernetes-models/apps/v1/Deployment";
import type { IContainer } from "kubernetes-models/v1/Container";
import type { IPodSpec } from "kubernetes-models/v1/PodSpec";
import type { IService } from "kubernetes-models/v1/Service";
import type { K8sObject } from "./k8s-models.js";
import { selects, type LabelSelector } from "./k8s-network.js";

/** The namespace everything lives in; Envoy's and KEDA's addresses spell it out. */
export const NAMESPACE = "parley";
/** The one port every Parley server listens on. */
export const GRPC_PORT = 50051;
/** The chat pods' WEB_PORT: the page, for Envoy's `web` cluster. */
export const WEB_PORT = 8080;

/** A Deployment, StatefulSet or Job, reduced to what the rules look at. */
export interface Workload {
  kind: string;
  name: string;
  podLabels: Record<string, string>;
  pod: IPodSpec;
  object: K8sObject;
}

/** The rendered objects, indexed for the rules. */
export class Manifests {
  readonly workloads: Workload[];

  constructor(readonly objects: K8sObject[]) {
    this.workloads = objects.flatMap((object) => {
      if (!["Deployment", "StatefulSet", "Job"].includes(String(object.kind))) return [];
      const template = (object as { spec?: IDeployment["spec"] }).spec?.template;
      // `containers` defaulted so the rules can run on objects that failed their schema.
      const pod = { ...template?.spec, containers: template?.spec?.containers ?? [] };
      return [{ kind: String(object.kind), name: nameOf(object), podLabels: template?.metadata?.labels ?? {}, pod, object }];
    });
  }

  ofKind<T>(kind: string): T[] {
    return this.objects.filter((o) => o.kind === kind) as T[];
  }

  named<T>(kind: string, name: string): T | undefined {
    return this.objects.find((o) => o.kind === kind && nameOf(o) === name) as T | undefined;
  }

  workload(kind: string, name: string): Workload | undefined {
    return this.workloads.find((w) => w.kind === kind && w.name === name);
  }

  /** Workloads whose pods `selector` selects. */
  selected(selector: LabelSelector | undefined): Workload[] {
    return this.workloads.filter((w) => selects(selector, w.podLabels));
  }

  /**
   * What would go wrong dialling `host:port` from a pod in the namespace: the
   * host must be `<service>.<namespace>.svc.cluster.local` (or a shorter form)
   * and name a rendered Service that has `port`.
   */
  serviceAddressProblems(what: string, host: string, port: number): string[] {
    const [service, namespace = NAMESPACE, ...rest] = host.split(".");
    if (rest.length > 0 && rest.join(".") !== "svc.cluster.local") return [`${what}: ${host} is not a cluster Service name`];
    if (namespace !== NAMESPACE) return [`${what}: ${host} is outside namespace ${NAMESPACE}`];
    const target = this.named<IService>("Service", service);
    if (!target) return [`${what}: no Service "${service}" for ${host}`];
    if (!(target.spec?.ports ?? []).some((p) => p.port === port)) return [`${what}: Service/${service} has no port ${port}`];
    return [];
  }
}

/** `metadata.name`, or "?" when it is missing. */
export function nameOf(object: K8sObject): string {
  const name = (object.metadata as { name?: unknown } | undefined)?.name;
  return typeof name === "string" ? name : "?";
}

/** Every container of a pod, init containers included. */
export function allContainers(pod: IPodSpec): IContainer[] {
  return [...(pod.initContainers ?? []), ...(pod.containers ?? [])];
}
