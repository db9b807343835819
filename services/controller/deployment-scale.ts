// The controller's only writes to Kubernetes: a JSON merge patch of
// spec.replicas on deployments/{name}/scale, and an Event that says why.
// The Deployment itself is never read and replaced, so nothing another writer
// set on it (image, labels, a kubectl edit) can be lost to a stale copy.
import {
  ApiException,
  AppsV1Api,
  EventsV1Api,
  type KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  V1MicroTime,
  type EventsV1Event,
} from "@kubernetes/client-node";

/** Which Deployment is scaled. */
export interface DeploymentRef {
  namespace: string;
  name: string;
}

/** What the Events name as their source. */
export interface EventSource {
  /** events.k8s.io reportingController: a qualified name. */
  controller: string;
  /** events.k8s.io reportingInstance: this pod. */
  instance: string;
}

/** A Kubernetes call that failed or timed out; `status` is the HTTP status when there was one. */
class KubernetesCallError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = "KubernetesCallError";
  }
}

/** client-node's HTTP calls take no deadline, so a hung API server would hang the loop without this. */
async function bounded<T>(what: string, timeoutMs: number, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new KubernetesCallError(`${what}: no answer in ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([work, timeout]);
  } catch (err) {
    if (err instanceof KubernetesCallError) throw err;
    if (err instanceof ApiException) {
      const body = typeof err.body === "string" ? err.body : JSON.stringify(err.body);
      throw new KubernetesCallError(`${what}: HTTP ${err.code} ${body?.slice(0, 300) ?? ""}`, err.code);
    }
    throw new KubernetesCallError(`${what}: ${err instanceof Error ? err.message : String(err)}`);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The scale subresource of one Deployment, through `@kubernetes/client-node`:
 * the sync loop's ScaleTarget in production.
 * Build it from a KubeConfig (`loadFromDefault()` finds in-cluster service
 * account credentials or KUBECONFIG). Needs RBAC: get and patch on
 * apps/deployments/scale, create on events.k8s.io/events.
 */
export class DeploymentScale {
  private readonly apps: AppsV1Api;
  private readonly events: EventsV1Api;

  constructor(
    kubeConfig: KubeConfig,
    readonly target: DeploymentRef,
    private readonly source: EventSource,
    private readonly timeoutMs: number,
  ) {
    this.apps = kubeConfig.makeApiClient(AppsV1Api);
    this.events = kubeConfig.makeApiClient(EventsV1Api);
  }

  /** spec.replicas from GET .../deployments/{name}/scale. */
  async current(): Promise<number> {
    const { name, namespace } = this.target;
    const scale = await bounded(`GET ${this.describe()}`, this.timeoutMs, this.apps.readNamespacedDeploymentScale({ name, namespace }));
    return scale.spec?.replicas ?? 0;
  }

  /** PATCH .../scale with application/merge-patch+json {"spec":{"replicas":N}}; resolves to the replicas the server stored. */
  async set(replicas: number): Promise<number> {
    const { name, namespace } = this.target;
    const scale = await bounded(
      `PATCH ${this.describe()}`,
      this.timeoutMs,
      this.apps.patchNamespacedDeploymentScale(
        { name, namespace, body: { spec: { replicas } } },
        setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
      ),
    );
    return scale.spec?.replicas ?? replicas;
  }

  /** An events.k8s.io/v1 Event regarding the Deployment, so `kubectl describe deployment` shows why it scaled. */
  async recordScaling(from: number, to: number, note: string): Promise<void> {
    const { name, namespace } = this.target;
    const now = new V1MicroTime();
    const event: EventsV1Event = {
      apiVersion: "events.k8s.io/v1",
      kind: "Event",
      // client-go's naming: the object's name and a unique hex suffix.
      metadata: { name: `${name}.${(BigInt(now.getTime()) * 1_000_000n + BigInt(Math.floor(Math.random() * 1e6))).toString(16)}`, namespace },
      eventTime: now,
      type: "Normal",
      reason: to > from ? "ScaledUp" : "ScaledDown",
      action: "Scale",
      note: `${from} → ${to}: ${note}`.slice(0, 1024),
      regarding: { apiVersion: "apps/v1", kind: "Deployment", name, namespace },
      reportingController: this.source.controller,
      reportingInstance: this.source.instance.slice(0, 128),
    };
    await bounded(`POST event for ${this.describe()}`, this.timeoutMs, this.events.createNamespacedEvent({ namespace, body: event }));
  }

  private describe(): string {
    return `deployments/${this.target.name}/scale in ${this.target.namespace}`;
  }
}
