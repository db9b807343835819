// Which schema checks which rendered object: a table from apiVersion + kind to
// the kubernetes-models (4.x) class and to the module that declares its type.
// A kind missing from the table is reported, never skipped: an object nobody
// checked is exactly where a typo hides.
import { ScaledObject } from "@kubernetes-models/keda/keda.sh/v1alpha1";
import { ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1";
import { Deployment, StatefulSet } from "kubernetes-models/apps/v1";
import { Job } from "kubernetes-models/batch/v1";
import { NetworkPolicy } from "kubernetes-models/networking.k8s.io/v1";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1";
import { Role, RoleBinding } from "kubernetes-models/rbac.authorization.k8s.io/v1";
import { ConfigMap, Namespace, PersistentVolumeClaim, Secret, Service, ServiceAccount } from "kubernetes-models/v1";
import { unknownFields } from "./k8s-strict-fields.js";

/** A rendered Kubernetes object, as parsed from YAML: nothing about it is trusted yet. */
export type K8sObject = Record<string, unknown>;

/** What validates one apiVersion + kind. */
export interface ModelEntry {
  /** Builds the model; `.validate()` throws with ajv's errors when the schema rejects the data. */
  create(data: K8sObject): { validate(): void };
  /** The module whose `I<Kind>` interface lists the object's fields, for the unknown-field walk. */
  typesModule: string;
}

const entry = (model: new (data: never) => { validate(): void }, typesModule: string): ModelEntry => ({
  create: (data) => new model(data as never),
  typesModule,
});

/**
 * Every kind the manifests may contain, keyed `apiVersion/kind`. Add a kind here
 * (with its model) before using it in k8s/; until then it is a problem.
 */
export const MODELS: Readonly<Record<string, ModelEntry>> = {
  "v1/Namespace": entry(Namespace, "kubernetes-models/v1/Namespace"),
  "v1/ConfigMap": entry(ConfigMap, "kubernetes-models/v1/ConfigMap"),
  "v1/Secret": entry(Secret, "kubernetes-models/v1/Secret"),
  "v1/Service": entry(Service, "kubernetes-models/v1/Service"),
  "v1/ServiceAccount": entry(ServiceAccount, "kubernetes-models/v1/ServiceAccount"),
  "v1/PersistentVolumeClaim": entry(PersistentVolumeClaim, "kubernetes-models/v1/PersistentVolumeClaim"),
  "apps/v1/Deployment": entry(Deployment, "kubernetes-models/apps/v1/Deployment"),
  "apps/v1/StatefulSet": entry(StatefulSet, "kubernetes-models/apps/v1/StatefulSet"),
  "batch/v1/Job": entry(Job, "kubernetes-models/batch/v1/Job"),
  "policy/v1/PodDisruptionBudget": entry(PodDisruptionBudget, "kubernetes-models/policy/v1/PodDisruptionBudget"),
  "networking.k8s.io/v1/NetworkPolicy": entry(NetworkPolicy, "kubernetes-models/networking.k8s.io/v1/NetworkPolicy"),
  "rbac.authorization.k8s.io/v1/Role": entry(Role, "kubernetes-models/rbac.authorization.k8s.io/v1/Role"),
  "rbac.authorization.k8s.io/v1/RoleBinding": entry(RoleBinding, "kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding"),
  "keda.sh/v1alpha1/ScaledObject": entry(ScaledObject, "@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject"),
  "monitoring.coreos.com/v1/ServiceMonitor": entry(ServiceMonitor, "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor"),
};

/** `Kind/name` (or `Kind/?`), how problems name an object. */
export function describe(object: K8sObject): string {
  const metadata = object.metadata as { name?: unknown } | undefined;
  const name = typeof metadata?.name === "string" ? metadata.name : "?";
  return `${typeof object.kind === "string" ? object.kind : "?"}/${name}`;
}

interface AjvError {
  instancePath?: string;
  message?: string;
  params?: Record<string, unknown>;
}

/**
 * Checks one object against its schema and reports fields the schema does not
 * know. The second part matters: kubernetes-models' schemas allow unknown
 * properties, but `kubectl apply` validates strictly by default, so a misspelt
 * `readinesProbe` would pass here and fail at deploy time (or worse, be
 * silently dropped by an older client).
 */
export function validateObject(object: K8sObject): string[] {
  const name = describe(object);
  const key = `${String(object.apiVersion)}/${String(object.kind)}`;
  const model = MODELS[key];
  if (!model) {
    return [
      `${name}: no model for apiVersion "${String(object.apiVersion)}" kind "${String(object.kind)}" (add it to MODELS in scripts/validate/k8s-models.ts)`,
    ];
  }
  const problems: string[] = [];
  try {
    model.create(object).validate();
  } catch (err) {
    const errors = (err as { errors?: AjvError[] }).errors;
    if (!Array.isArray(errors)) problems.push(`${name}: ${err instanceof Error ? err.message : String(err)}`);
    else for (const e of errors) problems.push(`${name}: ${formatAjvError(e)}`);
  }
  for (const path of unknownFields(object, model.typesModule)) problems.push(`${name}: unknown field ${path}`);
  return problems;
}

function formatAjvError(error: AjvError): string {
  const path = (error.instancePath ?? "").split("/").filter(Boolean).join(".") || "(root)";
  const allowed = error.params?.allowedValues;
  const detail = Array.isArray(allowed) ? ` (${allowed.map((v) => JSON.stringify(v)).join(", ")})` : "";
  return `${path} ${error.message ?? "is invalid"}${detail}`;
}
