// A small evaluator for NetworkPolicy ingress, so the checks can ask "may envoy
// reach chat on 50051?" of the rendered policies instead of trusting their
// names. A policy set that blocks the app is the classic NetworkPolicy outage,
// and nothing in a schema would notice it.
import type { INetworkPolicy } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicy";

/** A metav1.LabelSelector, as the models declare it. */
export type LabelSelector = NonNullable<INetworkPolicy["spec"]>["podSelector"];

/** Who opens a connection: a pod (its namespace's labels and its own), or a client outside the cluster. */
export type Source = { namespaceLabels: Record<string, string>; podLabels: Record<string, string> } | "outside";

/** The pod that receives it, in the policies' namespace. */
export interface Target {
  podLabels: Record<string, string>;
  port: number;
}

/** Whether `selector` selects `labels` (matchLabels and every matchExpressions operator). */
export function selects(selector: LabelSelector | undefined, labels: Record<string, string>): boolean {
  if (!selector) return false;
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) if (labels[key] !== value) return false;
  for (const { key, operator, values = [] } of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, key);
    if (operator === "In" && !(has && values.includes(labels[key]))) return false;
    if (operator === "NotIn" && has && values.includes(labels[key])) return false;
    if (operator === "Exists" && !has) return false;
    if (operator === "DoesNotExist" && has) return false;
  }
  return true;
}

/**
 * Whether `source` may connect to `target` under `policies` (all from the
 * target's namespace, `namespaceLabels` being that namespace's labels). As in
 * Kubernetes: a pod no Ingress policy selects accepts everything; a selected pod
 * accepts what at least one rule of one selecting policy allows. An ipBlock peer
 * is taken to admit every outside client, and named ports never match: the
 * manifests use port numbers.
 */
export function ingressAllowed(policies: INetworkPolicy[], namespaceLabels: Record<string, string>, source: Source, target: Target): boolean {
  const selecting = policies.filter(
    (p) => (p.spec?.policyTypes ?? ["Ingress"]).includes("Ingress") && selects(p.spec?.podSelector ?? {}, target.podLabels),
  );
  if (selecting.length === 0) return true;
  return selecting.some((policy) =>
    (policy.spec?.ingress ?? []).some((rule) => {
      const portOk = !rule.ports?.length || rule.ports.some((p) => p.port === undefined || p.port === target.port);
      const fromOk = !rule.from?.length || rule.from.some((peer) => peerMatches(peer, namespaceLabels, source));
      return portOk && fromOk;
    }),
  );
}

type Peer = NonNullable<NonNullable<NonNullable<INetworkPolicy["spec"]>["ingress"]>[number]["from"]>[number];

function peerMatches(peer: Peer, ownNamespaceLabels: Record<string, string>, source: Source): boolean {
  if (source === "outside") return peer.ipBlock !== undefined;
  if (peer.ipBlock) return false;
  const namespaceOk = peer.namespaceSelector
    ? selects(peer.namespaceSelector, source.namespaceLabels)
    : sameLabels(source.namespaceLabels, ownNamespaceLabels);
  const podOk = peer.podSelector ? selects(peer.podSelector, source.podLabels) : true;
  return namespaceOk && podOk;
}

function sameLabels(a: Record<string, string>, b: Record<string, string>): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => a[k] === b[k]);
}
