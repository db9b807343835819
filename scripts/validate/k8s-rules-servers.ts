// Rules for the Parley servers (auth, chat, scaler) and what they stand on:
// gRPC probes on the right health service, a shutdown that fits in the grace
// period, settings the app itself accepts, migrations, disruption budgets, and
// Postgres on a persistent volume.
import type { IPodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";
import type { IContainer } from "kubernetes-models/v1/Container";
import type { IProbe } from "kubernetes-models/v1/Probe";
import { ConfigError, loadConfig } from "../../services/lib/config.js";
import { GRPC_PORT, type Manifests, WEB_PORT, type Workload } from "./k8s-manifests.js";
import { selects } from "./k8s-network.js";

/** Each server Deployment, by the name of the service it hosts, and the health service its probes ask about. */
export const SERVERS = {
  auth: "parley.auth.v1.AuthService",
  chat: "parley.chat.v1.ChatService",
  scaler: "externalscaler.ExternalScaler",
} as const;

/** The app's default SHUTDOWN_TIMEOUT_SECONDS (services/lib/config.ts). */
const DEFAULT_DRAIN_SECONDS = 20;
/** Kubernetes' default terminationGracePeriodSeconds. */
const DEFAULT_GRACE_SECONDS = 30;

/** The auth, chat and scaler Deployments, each as a gRPC server that drains cleanly, plus what they need to run in a cluster. */
export function checkServers(m: Manifests): string[] {
  const problems: string[] = [];
  const images = new Set<string>();
  for (const [name, healthService] of Object.entries(SERVERS)) {
    const w = m.workload("Deployment", name);
    if (!w) {
      problems.push(`Deployment/${name} is missing`);
      continue;
    }
    const at = `Deployment/${name}`;
    const server = w.pod.containers.find((c) => envEntry(c, "SERVICES") !== undefined);
    if (!server) {
      problems.push(`${at}: no container sets SERVICES`);
      continue;
    }
    if (server.image) images.add(server.image);
    const env = resolveEnv(server);
    if (env.SERVICES !== name) problems.push(`${at}: SERVICES is "${env.SERVICES}", expected "${name}"`);
    problems.push(...probeProblems(at, "readiness", server.readinessProbe, healthService));
    problems.push(...probeProblems(at, "liveness", server.livenessProbe, healthService));
    if (!(server.ports ?? []).some((p) => p.containerPort === GRPC_PORT)) problems.push(`${at}: container port ${GRPC_PORT} is not declared`);
    problems.push(...webProblems(at, name, server, env));
    problems.push(...shutdownProblems(at, w, server, env));
    problems.push(...settingsProblems(at, m, server, env));
    if (name !== "scaler") problems.push(...migrationProblems(m, w));
  }
  if (images.size > 1) problems.push(`the servers run different images (${[...images].join(", ")}); Parley is one image`);
  problems.push(...budgetProblems(m), ...postgresProblems(m));
  return problems;
}

/**
 * WEB_PORT (default 8080): the chat pods serve the page on it, for Envoy's
 * `web` cluster, and declare the port; the other servers turn it off.
 */
function webProblems(at: string, name: string, server: IContainer, env: Record<string, string>): string[] {
  if (name !== "chat") return env.WEB_PORT?.toLowerCase() === "off" ? [] : [`${at}: WEB_PORT must be "off" (only the chat pods serve the page)`];
  const problems: string[] = [];
  if (env.WEB_PORT !== String(WEB_PORT))
    problems.push(`${at}: WEB_PORT must be "${WEB_PORT}" (Envoy's web cluster), not ${JSON.stringify(env.WEB_PORT)}`);
  if (!(server.ports ?? []).some((p) => p.containerPort === WEB_PORT)) problems.push(`${at}: container port ${WEB_PORT} is not declared`);
  return problems;
}

function probeProblems(at: string, kind: string, probe: IProbe | undefined, service: string): string[] {
  if (!probe) return [`${at}: no ${kind}Probe`];
  if (!probe.grpc) return [`${at}: ${kind}Probe is not a gRPC probe`];
  const problems: string[] = [];
  if (probe.grpc.port !== GRPC_PORT) problems.push(`${at}: ${kind}Probe asks port ${probe.grpc.port}, not ${GRPC_PORT}`);
  if (probe.grpc.service !== service) problems.push(`${at}: ${kind}Probe asks for service "${probe.grpc.service ?? ""}", expected "${service}"`);
  return problems;
}

/** A preStop hook, and a grace period longer than the preStop wait plus the whole drain. */
function shutdownProblems(at: string, w: Workload, server: IContainer, env: Record<string, string>): string[] {
  const preStop = server.lifecycle?.preStop;
  if (!preStop || !(preStop.exec?.command?.length || preStop.sleep || preStop.httpGet)) {
    return [`${at}: no preStop hook (the endpoints must drop the pod before SIGTERM)`];
  }
  const drain = env.SHUTDOWN_TIMEOUT_SECONDS !== undefined ? Number(env.SHUTDOWN_TIMEOUT_SECONDS) : DEFAULT_DRAIN_SECONDS;
  const wait = preStopSeconds(preStop);
  const grace = w.pod.terminationGracePeriodSeconds ?? DEFAULT_GRACE_SECONDS;
  if (!(grace > drain + wait)) {
    return [`${at}: terminationGracePeriodSeconds ${grace} does not exceed the preStop wait (${wait} s) plus the drain (${drain} s)`];
  }
  return [];
}

function preStopSeconds(hook: NonNullable<NonNullable<IContainer["lifecycle"]>["preStop"]>): number {
  if (hook.sleep) return hook.sleep.seconds;
  const match = /\bsleep\s+(\d+)/.exec((hook.exec?.command ?? []).join(" "));
  return match ? Number(match[1]) : 0;
}

/** Cluster mode, a pod identity, and settings that pass the app's own `loadConfig`. */
function settingsProblems(at: string, m: Manifests, server: IContainer, env: Record<string, string>): string[] {
  const problems: string[] = [];
  const podName = envEntry(server, "POD_NAME")?.valueFrom?.fieldRef?.fieldPath;
  if (podName !== "metadata.name") problems.push(`${at}: POD_NAME must come from the downward API (fieldRef metadata.name)`);
  for (const [variable, port] of [
    ["DATABASE_URL", 5432],
    ["REDIS_URL", 6379],
  ] as const) {
    const value = env[variable];
    if (value === undefined) {
      problems.push(`${at}: ${variable} is not set, so the server would run embedded, alone`);
      continue;
    }
    const url = safeUrl(value);
    if (url) problems.push(...m.serviceAddressProblems(`${at} ${variable}`, url.hostname, Number(url.port || port)));
  }
  try {
    loadConfig(env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    for (const problem of err.problems) problems.push(`${at}: ${problem}`);
  }
  return problems;
}

/** auth and chat apply migrations before serving: an init container or a Job running the migrations (`npm run migrate`, or the built `dist/services/db/migrate-cli.js`). */
function migrationProblems(m: Manifests, w: Workload): string[] {
  const runsMigrate = (c: IContainer) => [...(c.command ?? []), ...(c.args ?? [])].some((part) => /\bmigrate\b/.test(part));
  if ((w.pod.initContainers ?? []).some(runsMigrate)) return [];
  if (m.workloads.some((j) => j.kind === "Job" && j.pod.containers.some(runsMigrate))) return [];
  return [`Deployment/${w.name}: no init container or Job runs the migrations (dist/services/db/migrate-cli.js)`];
}

function budgetProblems(m: Manifests): string[] {
  const budgets = m.ofKind<IPodDisruptionBudget>("PodDisruptionBudget");
  const unset = budgets.filter((b) => b.spec?.minAvailable === undefined && b.spec?.maxUnavailable === undefined);
  const problems = unset.map((b) => `PodDisruptionBudget/${b.metadata?.name}: sets neither minAvailable nor maxUnavailable`);
  return problems.concat(
    (["auth", "chat"] as const).flatMap((name) => {
      const w = m.workload("Deployment", name);
      if (!w || budgets.some((b) => selects(b.spec?.selector, w.podLabels))) return [];
      return [`Deployment/${name}: no PodDisruptionBudget selects its pods`];
    }),
  );
}

function postgresProblems(m: Manifests): string[] {
  const postgres = m.workloads.find((w) => w.kind === "StatefulSet" && w.pod.containers.some((c) => c.image?.startsWith("postgres")));
  if (!postgres) return ["no StatefulSet runs Postgres"];
  const claims = (postgres.object as { spec?: { volumeClaimTemplates?: Array<{ metadata?: { name?: string } }> } }).spec?.volumeClaimTemplates ?? [];
  const names = new Set(claims.map((c) => c.metadata?.name));
  const mounted = postgres.pod.containers.some((c) => (c.volumeMounts ?? []).some((v) => names.has(v.name)));
  return mounted ? [] : [`StatefulSet/${postgres.name}: Postgres data is not on a volumeClaimTemplates volume`];
}

function envEntry(container: IContainer, name: string) {
  return (container.env ?? []).find((e) => e.name === name);
}

/**
 * The container's environment as the process would see it: `$(VAR)` expanded
 * from earlier entries as the kubelet does, and values from Secrets or the
 * downward API replaced by a stand-in, since only the cluster knows them.
 */
export function resolveEnv(container: IContainer): Record<string, string> {
  const env: Record<string, string> = {};
  for (const entry of container.env ?? []) {
    if (entry.value !== undefined) env[entry.name] = entry.value.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (whole, v: string) => env[v] ?? whole);
    else if (entry.valueFrom?.fieldRef) env[entry.name] = `downward-${entry.valueFrom.fieldRef.fieldPath.replace(/\W/g, "-")}`;
    else if (entry.valueFrom) env[entry.name] = "from-a-secret";
  }
  return env;
}

function safeUrl(value: string): URL | undefined {
  try {
    return new URL(value);
  } catch {
    return undefined;
  }
}
