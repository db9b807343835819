// Rules for the autoscalers. Exactly the one an overlay promises is present
// (two would fight over the chat replica count), KEDA's ScaledObject asks
// Parley's scaler with the design's numbers, and the bundled controller gets the
// same numbers and a Role that can do nothing but scale and record Events.
import type { IScaledObject } from "@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject";
import type { IRole } from "kubernetes-models/rbac.authorization.k8s.io/v1/Role";
import type { IRoleBinding } from "kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding";
import { GRPC_PORT, type Manifests, NAMESPACE, type Workload } from "./k8s-manifests.js";
import { resolveEnv } from "./k8s-rules-servers.js";

/** Which autoscaler an overlay brings. */
export type Autoscaler = "keda" | "controller" | "none";

/** Where KEDA and the controller reach the scaler. */
export const SCALER_ADDRESS = `scaler.${NAMESPACE}.svc.cluster.local:${GRPC_PORT}`;

/** The design's scaling numbers (design.md, "Scaling"): ceil(users / 3) chat pods, 1 to 10, 60 s before scaling down. */
export const SCALING = { target: "chat", usersPerReplica: 3, min: 1, max: 10, scaleDownStabilizationSeconds: 60 } as const;

/** What the controller's Role may grant, per resource: nothing else, in no other API group. */
const GRANTS: Record<string, { groups: string[]; verbs: string[]; needed: string[] }> = {
  "deployments/scale": { groups: ["apps"], verbs: ["get", "patch", "update"], needed: ["get", "patch"] },
  events: { groups: ["", "events.k8s.io"], verbs: ["create", "patch"], needed: ["create"] },
};

/** The settings the controller reads (design.md, "Bundled controller"); anything else is a typo. */
const CONTROLLER_SETTINGS = new Set([
  "SCALER_ADDRESS",
  "TARGET_DEPLOYMENT",
  "TARGET_NAMESPACE",
  "MIN_REPLICAS",
  "MAX_REPLICAS",
  "USERS_PER_REPLICA",
  "SCALE_DOWN_STABILIZATION_SECONDS",
  "SYNC_INTERVAL_SECONDS",
  "DRY_RUN",
  "LOG_LEVEL",
  "LOG_FORMAT",
  "METRICS_PORT",
  "POD_NAME",
]);

/** Exactly the autoscaler `expected` names, configured with the design's numbers, and Roles limited to scaling. */
export function checkAutoscaling(m: Manifests, expected: Autoscaler): string[] {
  const scaledObjects = m.ofKind<IScaledObject>("ScaledObject");
  const controllers = m.workloads.filter((w) => w.pod.containers.some((c) => (c.env ?? []).some((e) => e.name === "SCALER_ADDRESS")));
  const problems: string[] = [];
  if (expected === "keda" && scaledObjects.length !== 1) problems.push(`expected one ScaledObject, found ${scaledObjects.length}`);
  if (expected !== "keda" && scaledObjects.length > 0) problems.push(`unexpected ScaledObject (this overlay's autoscaler: ${expected})`);
  if (expected === "controller" && controllers.length !== 1)
    problems.push(`expected one controller Deployment (with SCALER_ADDRESS), found ${controllers.length}`);
  if (expected !== "controller" && controllers.length > 0)
    problems.push(`unexpected controller Deployment/${controllers[0].name} (this overlay's autoscaler: ${expected})`);
  const target = m.workload("Deployment", SCALING.target)?.object as { spec?: { replicas?: unknown } } | undefined;
  if (expected !== "none" && target?.spec?.replicas !== undefined) {
    problems.push(`Deployment/${SCALING.target}: sets spec.replicas, which the autoscaler owns (every apply would reset it)`);
  }
  for (const so of scaledObjects) problems.push(...scaledObjectProblems(m, so));
  for (const c of controllers) problems.push(...controllerProblems(m, c));
  for (const role of m.ofKind<IRole>("Role")) problems.push(...roleProblems(role));
  return problems;
}

function scaledObjectProblems(m: Manifests, so: IScaledObject): string[] {
  const at = `ScaledObject/${so.metadata?.name}`;
  const problems: string[] = [];
  const ref = so.spec?.scaleTargetRef;
  if ((ref?.kind ?? "Deployment") !== "Deployment" || ref?.name !== SCALING.target)
    problems.push(`${at}: scaleTargetRef is not Deployment/${SCALING.target}`);
  if (so.spec?.minReplicaCount !== SCALING.min) problems.push(`${at}: minReplicaCount is ${so.spec?.minReplicaCount}, expected ${SCALING.min}`);
  if (so.spec?.maxReplicaCount !== SCALING.max) problems.push(`${at}: maxReplicaCount is ${so.spec?.maxReplicaCount}, expected ${SCALING.max}`);
  const window = so.spec?.advanced?.horizontalPodAutoscalerConfig?.behavior?.scaleDown?.stabilizationWindowSeconds;
  if (window !== SCALING.scaleDownStabilizationSeconds) {
    problems.push(
      `${at}: advanced.horizontalPodAutoscalerConfig.behavior.scaleDown.stabilizationWindowSeconds is ${window}, expected ${SCALING.scaleDownStabilizationSeconds}`,
    );
  }
  const triggers = so.spec?.triggers ?? [];
  if (triggers.length !== 1) problems.push(`${at}: expected one trigger, found ${triggers.length}`);
  for (const trigger of triggers) {
    if (trigger.type !== "external-push") problems.push(`${at}: trigger type is "${trigger.type}", expected "external-push"`);
    const address = trigger.metadata?.scalerAddress;
    if (address !== SCALER_ADDRESS) problems.push(`${at}: scalerAddress is "${address}", expected "${SCALER_ADDRESS}"`);
    else problems.push(...addressProblems(m, at, address));
    if (trigger.metadata?.usersPerReplica !== String(SCALING.usersPerReplica)) {
      problems.push(`${at}: usersPerReplica is ${JSON.stringify(trigger.metadata?.usersPerReplica)}, expected "${SCALING.usersPerReplica}"`);
    }
  }
  return problems;
}

function controllerProblems(m: Manifests, w: Workload): string[] {
  const at = `${w.kind}/${w.name}`;
  const container = w.pod.containers.find((c) => (c.env ?? []).some((e) => e.name === "SCALER_ADDRESS"))!;
  const env = resolveEnv(container);
  const problems: string[] = [];
  for (const name of Object.keys(env)) if (!CONTROLLER_SETTINGS.has(name)) problems.push(`${at}: ${name} is not a controller setting`);
  if (env.SCALER_ADDRESS !== SCALER_ADDRESS) problems.push(`${at}: SCALER_ADDRESS is "${env.SCALER_ADDRESS}", expected "${SCALER_ADDRESS}"`);
  else problems.push(...addressProblems(m, at, env.SCALER_ADDRESS));
  const target = env.TARGET_DEPLOYMENT ?? "chat";
  if (target !== SCALING.target) problems.push(`${at}: TARGET_DEPLOYMENT is "${target}", expected "${SCALING.target}"`);
  const numbers: Array<[string, number]> = [
    ["MIN_REPLICAS", SCALING.min],
    ["MAX_REPLICAS", SCALING.max],
    ["USERS_PER_REPLICA", SCALING.usersPerReplica],
    ["SCALE_DOWN_STABILIZATION_SECONDS", SCALING.scaleDownStabilizationSeconds],
  ];
  for (const [name, expected] of numbers) {
    if (env[name] !== undefined && Number(env[name]) !== expected) problems.push(`${at}: ${name} is "${env[name]}", expected ${expected}`);
  }
  if (((w.object as { spec?: { replicas?: number } }).spec?.replicas ?? 1) > 1)
    problems.push(`${at}: more than one controller replica would act twice`);
  problems.push(...accessProblems(m, at, w.pod.serviceAccountName));
  return problems;
}

/** The controller's service account exists and is bound to a Role that lets it scale and record Events. */
function accessProblems(m: Manifests, at: string, account: string | undefined): string[] {
  if (!account || account === "default") return [`${at}: runs as the default service account; give it its own`];
  if (!m.named("ServiceAccount", account)) return [`${at}: ServiceAccount/${account} is missing`];
  const bindings = m
    .ofKind<IRoleBinding>("RoleBinding")
    .filter((b) => (b.subjects ?? []).some((s) => s.kind === "ServiceAccount" && s.name === account && (s.namespace ?? NAMESPACE) === NAMESPACE));
  const roles = bindings.flatMap((b) => (b.roleRef?.kind === "Role" ? [m.named<IRole>("Role", b.roleRef.name)] : [])).filter((r) => r !== undefined);
  if (roles.length === 0) return [`${at}: no RoleBinding binds a Role to ServiceAccount/${account}`];
  const problems: string[] = [];
  for (const [resource, grant] of Object.entries(GRANTS)) {
    for (const verb of grant.needed) {
      const granted = roles.some((r) => (r.rules ?? []).some((rule) => rule.resources?.includes(resource) && (rule.verbs ?? []).includes(verb)));
      if (!granted) problems.push(`${at}: its Role does not grant ${verb} on ${resource}`);
    }
  }
  return problems;
}

/** Every rule of a Role names only deployments/scale or events, in their API groups, with their verbs. */
function roleProblems(role: IRole): string[] {
  const at = `Role/${role.metadata?.name}`;
  const problems: string[] = [];
  for (const [i, rule] of (role.rules ?? []).entries()) {
    if (rule.nonResourceURLs?.length) problems.push(`${at}: rule ${i} grants nonResourceURLs`);
    for (const resource of rule.resources ?? []) {
      const grant = GRANTS[resource];
      if (!grant) {
        problems.push(`${at}: rule ${i} grants "${resource}"; only ${Object.keys(GRANTS).join(" and ")} are allowed`);
        continue;
      }
      const groups = (rule.apiGroups ?? []).filter((g) => !grant.groups.includes(g));
      if (groups.length > 0) problems.push(`${at}: rule ${i} grants ${resource} in API group(s) ${groups.map((g) => JSON.stringify(g)).join(", ")}`);
      const verbs = (rule.verbs ?? []).filter((v) => !grant.verbs.includes(v));
      if (verbs.length > 0) problems.push(`${at}: rule ${i} grants ${verbs.join(", ")} on ${resource}; allowed: ${grant.verbs.join(", ")}`);
    }
  }
  return problems;
}

function addressProblems(m: Manifests, at: string, address: string): string[] {
  const [host, port] = address.split(":");
  return m.serviceAddressProblems(at, host, Number(port));
}
