// The Kubernetes manifests, checked offline: every overlay renders with
// `kubectl kustomize` and passes the schemas and Parley's rules with zero
// problems, and each check catches the mistake it exists for (the tests break
// a copy of the rendered objects and expect a problem that names it).
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import anyTest, { type TestFn } from "ava";
import type { K8sObject } from "../scripts/validate/k8s-models.js";
import {
  expectationsOf,
  OVERLAYS,
  parseManifests,
  readEnvoyConfig,
  renderKustomization,
  renderOverlay,
  validateObjects,
  validateOverlay,
  type OverlayName,
} from "../scripts/validate/k8s.js";

type Context = { rendered: Record<OverlayName, K8sObject[]> };
const test = anyTest as TestFn<Context>;

test.before((t) => {
  const rendered = {} as Record<OverlayName, K8sObject[]>;
  for (const name of Object.keys(OVERLAYS) as OverlayName[]) rendered[name] = renderOverlay(name).objects;
  t.context.rendered = rendered;
});

for (const name of Object.keys(OVERLAYS) as OverlayName[]) {
  test(`${OVERLAYS[name].dir} renders and validates with zero problems`, (t) => {
    const { objects, problems } = validateOverlay(name);
    t.deepEqual(problems, []);
    t.true(objects.length >= 20, `only ${objects.length} objects rendered`);
  });
}

/** Breaks a deep copy of an overlay's objects with `change`, validates it, and returns the problems. */
function problemsAfter(t: { context: Context }, overlay: OverlayName, change: (objects: K8sObject[]) => void): string[] {
  const objects = structuredClone(t.context.rendered[overlay]);
  change(objects);
  return validateObjects(objects, expectationsOf(overlay, readEnvoyConfig()));
}

// Loosely typed access to the parts a test breaks.
type Any = any;
function find(objects: K8sObject[], kind: string, name: string): Any {
  const found = objects.find((o) => o.kind === kind && (o.metadata as Any)?.name === name);
  if (!found) throw new Error(`${kind}/${name} is not rendered`);
  return found;
}
const container = (objects: K8sObject[], deployment: string): Any => find(objects, "Deployment", deployment).spec.template.spec.containers[0];

/** Asserts that some problem matches `pattern`, showing them all when none does. */
function hasProblem(t: { true(value: boolean, message?: string): void }, problems: string[], pattern: RegExp): void {
  t.true(
    problems.some((p) => pattern.test(p)),
    `no problem matches ${pattern}:\n${problems.join("\n") || "(none)"}`,
  );
}

test("a field of the wrong type fails its schema", (t) => {
  const problems = problemsAfter(t, "base", (o) => (find(o, "Deployment", "auth").spec.replicas = "two"));
  hasProblem(t, problems, /^Deployment\/auth: spec\.replicas must be integer/);
});

test("a kind without a model is a problem, not skipped", (t) => {
  const problems = problemsAfter(t, "base", (o) => o.push({ apiVersion: "v1", kind: "Pod", metadata: { name: "stray", namespace: "parley" } }));
  hasProblem(t, problems, /^Pod\/stray: no model for apiVersion "v1" kind "Pod"/);
  const old = problemsAfter(t, "base", (o) => (find(o, "Deployment", "chat").apiVersion = "extensions/v1beta1"));
  hasProblem(t, old, /^Deployment\/chat: no model for apiVersion "extensions\/v1beta1"/);
});

test("an unknown field is a problem, even where the schema allows extra properties", (t) => {
  const problems = problemsAfter(t, "base", (o) => {
    const c = container(o, "chat");
    c.readinesProbe = c.readinessProbe;
    delete c.readinessProbe;
  });
  hasProblem(t, problems, /^Deployment\/chat: unknown field spec\.template\.spec\.containers\[0\]\.readinesProbe$/);
  hasProblem(t, problems, /^Deployment\/chat: no readinessProbe/);
  const keda = problemsAfter(t, "keda", (o) => (find(o, "ScaledObject", "chat").spec.maxReplicas = 10));
  hasProblem(t, keda, /^ScaledObject\/chat: unknown field spec\.maxReplicas$/);
});

test("the ScaledObject must be external-push to the scaler, 1 to 10 pods, 60 s scale-down window", (t) => {
  hasProblem(
    t,
    problemsAfter(t, "keda", (o) => (find(o, "ScaledObject", "chat").spec.maxReplicaCount = 20)),
    /maxReplicaCount is 20, expected 10/,
  );
  hasProblem(
    t,
    problemsAfter(t, "keda", (o) => (find(o, "ScaledObject", "chat").spec.maxReplicaCount = "ten")),
    /^ScaledObject\/chat: spec\.maxReplicaCount must be integer/,
  );
  hasProblem(
    t,
    problemsAfter(t, "keda", (o) => (find(o, "ScaledObject", "chat").spec.minReplicaCount = 0)),
    /minReplicaCount is 0, expected 1/,
  );
  hasProblem(
    t,
    problemsAfter(t, "keda", (o) => (find(o, "ScaledObject", "chat").spec.triggers[0].type = "external")),
    /trigger type is "external", expected "external-push"/,
  );
  hasProblem(
    t,
    problemsAfter(t, "keda", (o) => (find(o, "ScaledObject", "chat").spec.triggers[0].metadata.scalerAddress = "scaler:50051")),
    /scalerAddress is "scaler:50051"/,
  );
  hasProblem(
    t,
    problemsAfter(t, "keda", (o) => (find(o, "ScaledObject", "chat").spec.triggers[0].metadata.usersPerReplica = "5")),
    /usersPerReplica is "5"/,
  );
  hasProblem(
    t,
    problemsAfter(
      t,
      "keda",
      (o) => (find(o, "ScaledObject", "chat").spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleDown.stabilizationWindowSeconds = 300),
    ),
    /stabilizationWindowSeconds is 300, expected 60/,
  );
  hasProblem(
    t,
    problemsAfter(t, "keda", (o) => (find(o, "ScaledObject", "chat").spec.scaleTargetRef.name = "auth")),
    /scaleTargetRef is not Deployment\/chat/,
  );
});

test("the controller's Role grants deployments/scale and events, nothing else", (t) => {
  const whole = problemsAfter(t, "controller", (o) => (find(o, "Role", "parley-controller").rules[0].resources = ["deployments"]));
  hasProblem(t, whole, /^Role\/parley-controller: rule 0 grants "deployments"; only deployments\/scale and events are allowed/);
  hasProblem(t, whole, /does not grant patch on deployments\/scale/);
  hasProblem(
    t,
    problemsAfter(t, "controller", (o) => (find(o, "Role", "parley-controller").rules[1].verbs = ["*"])),
    /rule 1 grants \* on events/,
  );
  hasProblem(
    t,
    problemsAfter(t, "controller", (o) => (find(o, "Role", "parley-controller").rules[0].apiGroups = ["*"])),
    /rule 0 grants deployments\/scale in API group\(s\) "\*"/,
  );
  hasProblem(
    t,
    problemsAfter(t, "controller", (o) => (find(o, "RoleBinding", "parley-controller").subjects[0].name = "someone")),
    /no RoleBinding binds a Role/,
  );
});

test("the controller gets the scaler's address and the design's numbers", (t) => {
  const env = (o: K8sObject[]): Any[] => container(o, "parley-controller").env;
  hasProblem(
    t,
    problemsAfter(t, "controller", (o) => (env(o).find((e) => e.name === "MAX_REPLICAS").value = "20")),
    /MAX_REPLICAS is "20", expected 10/,
  );
  hasProblem(
    t,
    problemsAfter(t, "controller", (o) => env(o).push({ name: "MAX_REPLICA", value: "10" })),
    /MAX_REPLICA is not a controller setting/,
  );
  hasProblem(
    t,
    problemsAfter(t, "controller", (o) => (env(o).find((e) => e.name === "SCALER_ADDRESS").value = "scaler.default.svc.cluster.local:50051")),
    /SCALER_ADDRESS is "scaler\.default/,
  );
});

test("one autoscaler per overlay: KEDA and the controller never both size chat", (t) => {
  const scaledObject = t.context.rendered.keda.find((o) => o.kind === "ScaledObject")!;
  hasProblem(
    t,
    problemsAfter(t, "controller", (o) => o.push(structuredClone(scaledObject))),
    /unexpected ScaledObject/,
  );
  hasProblem(
    t,
    problemsAfter(t, "keda", (o) => (find(o, "Deployment", "chat").spec.replicas = 3)),
    /Deployment\/chat: sets spec\.replicas, which the autoscaler owns/,
  );
});

test("a server Deployment without gRPC probes, or probing the wrong service, is a problem", (t) => {
  const bare = problemsAfter(t, "base", (o) => {
    delete container(o, "chat").readinessProbe;
    delete container(o, "chat").livenessProbe;
  });
  hasProblem(t, bare, /^Deployment\/chat: no readinessProbe/);
  hasProblem(t, bare, /^Deployment\/chat: no livenessProbe/);
  const http = problemsAfter(t, "base", (o) => (container(o, "auth").livenessProbe = { httpGet: { path: "/", port: 50051 } }));
  hasProblem(t, http, /^Deployment\/auth: livenessProbe is not a gRPC probe/);
  const wrong = problemsAfter(t, "base", (o) => (container(o, "scaler").readinessProbe.grpc.service = "parley.chat.v1.ChatService"));
  hasProblem(
    t,
    wrong,
    /^Deployment\/scaler: readinessProbe asks for service "parley\.chat\.v1\.ChatService", expected "externalscaler\.ExternalScaler"/,
  );
});

test("shutdown: a preStop hook, and a grace period longer than preStop plus the drain", (t) => {
  hasProblem(
    t,
    problemsAfter(t, "base", (o) => delete container(o, "chat").lifecycle),
    /^Deployment\/chat: no preStop hook/,
  );
  hasProblem(
    t,
    problemsAfter(t, "base", (o) => (find(o, "Deployment", "auth").spec.template.spec.terminationGracePeriodSeconds = 20)),
    /^Deployment\/auth: terminationGracePeriodSeconds 20 does not exceed the preStop wait \(5 s\) plus the drain \(20 s\)/,
  );
  const longDrain = problemsAfter(t, "base", (o) => (container(o, "chat").env.find((e: Any) => e.name === "SHUTDOWN_TIMEOUT_SECONDS").value = "60"));
  hasProblem(t, longDrain, /^Deployment\/chat: terminationGracePeriodSeconds 45 does not exceed/);
});

test("every container has cpu and memory requests and limits", (t) => {
  const problems = problemsAfter(t, "base", (o) => {
    delete container(o, "redis").resources.limits;
    find(o, "Deployment", "chat").spec.template.spec.initContainers[0].resources.requests.memory = "2Gi";
  });
  hasProblem(t, problems, /^Deployment\/redis container redis: no cpu limit/);
  hasProblem(t, problems, /^Deployment\/redis container redis: no memory limit/);
  hasProblem(t, problems, /^Deployment\/chat container migrate: memory request 2Gi is above its limit 384Mi/);
});

test("workloads: non-empty selectors, an image per container, probes with a handler", (t) => {
  hasProblem(
    t,
    problemsAfter(t, "base", (o) => (find(o, "Deployment", "redis").spec.selector = {})),
    /^Deployment\/redis: spec\.selector is empty/,
  );
  hasProblem(
    t,
    problemsAfter(t, "base", (o) => delete container(o, "envoy").image),
    /^Deployment\/envoy container envoy: no image/,
  );
  hasProblem(
    t,
    problemsAfter(t, "base", (o) => delete container(o, "redis").livenessProbe),
    /^Deployment\/redis container redis: serves a port but has no livenessProbe/,
  );
  hasProblem(
    t,
    problemsAfter(t, "base", (o) => delete container(o, "envoy").readinessProbe.tcpSocket),
    /readinessProbe needs exactly one of exec, httpGet, tcpSocket, grpc/,
  );
  hasProblem(
    t,
    problemsAfter(t, "base", (o) => delete find(o, "Service", "scaler").spec.selector),
    /^Service\/scaler: has no selector/,
  );
});

test("data of the wrong shape gives problems, never an exception", (t) => {
  const problems = problemsAfter(t, "base", (o) => (find(o, "Service", "chat-headless").spec.ports = 7));
  hasProblem(t, problems, /^Service\/chat-headless: spec\.ports must be array/);
  hasProblem(t, problems, /rules could not finish .*; fix the schema problems first/);
});

test("server settings must pass the app's own configuration check and reach real Services", (t) => {
  const env = (o: K8sObject[]): Any[] => container(o, "chat").env;
  hasProblem(
    t,
    problemsAfter(t, "base", (o) => (env(o).find((e) => e.name === "PRESENCE_TTL_SECONDS").value = "45")),
    /^Deployment\/chat: PRESENCE_TTL_SECONDS must be an integer from 3 to 20/,
  );
  hasProblem(
    t,
    problemsAfter(
      t,
      "base",
      (o) => (env(o).find((e) => e.name === "DATABASE_URL").value = "postgres://parley:x@pg.parley.svc.cluster.local:5432/parley"),
    ),
    /^Deployment\/chat DATABASE_URL: no Service "pg"/,
  );
  hasProblem(
    t,
    problemsAfter(t, "base", (o) =>
      env(o).splice(
        env(o).findIndex((e) => e.name === "REDIS_URL"),
        1,
      ),
    ),
    /^Deployment\/chat: REDIS_URL is not set/,
  );
  hasProblem(
    t,
    problemsAfter(t, "base", (o) => (env(o).find((e) => e.name === "POD_NAME").valueFrom.fieldRef.fieldPath = "spec.nodeName")),
    /POD_NAME must come from the downward API/,
  );
  hasProblem(
    t,
    problemsAfter(t, "base", (o) => (env(o).find((e) => e.name === "SERVICES").value = "chat,auth")),
    /^Deployment\/chat: SERVICES is "chat,auth", expected "chat"/,
  );
  hasProblem(
    t,
    problemsAfter(t, "base", (o) => (find(o, "Secret", "parley-secrets").stringData = { "postgres-password": "x" })),
    /env REDIS_PASSWORD refers to Secret\/parley-secrets key "redis-password", which does not exist/,
  );
  hasProblem(
    t,
    problemsAfter(t, "base", (o) => delete find(o, "Deployment", "chat").spec.template.spec.initContainers),
    /^Deployment\/chat: no init container or Job runs the migrations/,
  );
});

test("PodDisruptionBudgets, Postgres on a volume claim, and Services that select pods", (t) => {
  hasProblem(
    t,
    problemsAfter(t, "base", (o) => o.splice(o.indexOf(find(o, "PodDisruptionBudget", "chat")), 1)),
    /^Deployment\/chat: no PodDisruptionBudget selects its pods/,
  );
  hasProblem(
    t,
    problemsAfter(t, "base", (o) => delete find(o, "StatefulSet", "postgres").spec.volumeClaimTemplates),
    /mounts unknown volume "data"/,
  );
  hasProblem(
    t,
    problemsAfter(t, "base", (o) => (find(o, "Service", "chat-headless").spec.selector = { "app.kubernetes.io/component": "chats" })),
    /^Service\/chat-headless: its selector matches no pods/,
  );
});

test("WEB_PORT: the chat pods serve the page on 8080 and declare it; auth and scaler turn the web server off", (t) => {
  const setEnv = (deployment: string, value: string | undefined) => (o: K8sObject[]) => {
    const env = container(o, deployment).env as { name: string; value?: string }[];
    const entry = env.find((e) => e.name === "WEB_PORT");
    if (value === undefined) env.splice(env.indexOf(entry as never), 1);
    else if (entry) entry.value = value;
  };
  hasProblem(t, problemsAfter(t, "base", setEnv("chat", "9090")), /^Deployment\/chat: WEB_PORT must be "8080"/);
  hasProblem(t, problemsAfter(t, "base", setEnv("chat", "off")), /^Deployment\/chat: WEB_PORT must be "8080"/);
  hasProblem(t, problemsAfter(t, "base", setEnv("auth", undefined)), /^Deployment\/auth: WEB_PORT must be "off"/);
  hasProblem(t, problemsAfter(t, "base", setEnv("scaler", "8080")), /^Deployment\/scaler: WEB_PORT must be "off"/);
  const noPort = problemsAfter(t, "base", (o) => {
    const c = container(o, "chat");
    c.ports = c.ports.filter((p: { containerPort: number }) => p.containerPort !== 8080);
  });
  hasProblem(t, noPort, /^Deployment\/chat: container port 8080 is not declared/);
});

test("NetworkPolicies: a default deny, each hop of the data flow allowed, the databases closed to the edge", (t) => {
  const drop = (name: string) => (o: K8sObject[]) => o.splice(o.indexOf(find(o, "NetworkPolicy", name)), 1);
  hasProblem(t, problemsAfter(t, "base", drop("default-deny-ingress")), /no NetworkPolicy denies ingress by default/);
  hasProblem(t, problemsAfter(t, "base", drop("allow-envoy-to-auth-and-chat")), /NetworkPolicies block envoy → chat:50051/);
  hasProblem(t, problemsAfter(t, "base", drop("allow-envoy-to-chat-web")), /NetworkPolicies block envoy → chat:8080/);
  const webOpen = problemsAfter(t, "base", (o) => delete find(o, "NetworkPolicy", "allow-envoy-to-chat-web").spec.ingress[0].from);
  hasProblem(t, webOpen, /NetworkPolicies allow clients outside the cluster → chat:8080/);
  hasProblem(t, problemsAfter(t, "controller", drop("allow-autoscalers-to-scaler")), /NetworkPolicies block parley-controller → scaler:50051/);
  const open = problemsAfter(t, "base", (o) => delete find(o, "NetworkPolicy", "allow-servers-to-postgres").spec.ingress[0].from);
  hasProblem(t, open, /NetworkPolicies allow envoy → postgres:5432/);
});

test("the Envoy ConfigMap carries envoy/envoy.yaml unchanged, and its upstreams are headless Services", (t) => {
  const edited = problemsAfter(t, "base", (o) => {
    const configMap = o.find((x) => x.kind === "ConfigMap" && (x.data as Any)?.["envoy.yaml"]) as Any;
    configMap.data["envoy.yaml"] = configMap.data["envoy.yaml"].replace("8080", "8081");
  });
  hasProblem(t, edited, /^ConfigMap\/envoy-config-[a-z0-9]+: envoy\.yaml differs from envoy\/envoy\.yaml/);
  hasProblem(
    t,
    problemsAfter(t, "base", (o) => (find(o, "Service", "chat-headless").spec.clusterIP = "10.0.0.9")),
    /STRICT_DNS needs a headless Service, but Service\/chat-headless has a cluster IP/,
  );
  hasProblem(
    t,
    problemsAfter(t, "base", (o) => (find(o, "Service", "auth-headless").metadata.name = "auth")),
    /cluster auth: no Service "auth-headless"/,
  );
});

test("scraping: every Parley pod is annotated for Prometheus and declares its metrics port 9464", (t) => {
  const annotations = (o: K8sObject[], deployment: string): Any => find(o, "Deployment", deployment).spec.template.metadata.annotations;
  hasProblem(
    t,
    problemsAfter(t, "base", (o) => delete annotations(o, "chat")["prometheus.io/scrape"]),
    /^Deployment\/chat: pod annotation prometheus\.io\/scrape is undefined, expected "true"/,
  );
  hasProblem(
    t,
    problemsAfter(t, "controller", (o) => (annotations(o, "parley-controller")["prometheus.io/port"] = "9090")),
    /^Deployment\/parley-controller: pod annotation prometheus\.io\/port is "9090", expected "9464"/,
  );
  hasProblem(
    t,
    problemsAfter(t, "base", (o) => (annotations(o, "auth")["prometheus.io/path"] = "/stats")),
    /^Deployment\/auth: pod annotation prometheus\.io\/path is "\/stats", expected "\/metrics"/,
  );
  const noPort = problemsAfter(t, "base", (o) => {
    const c = container(o, "scaler");
    c.ports = c.ports.filter((p: { name: string }) => p.name !== "metrics");
  });
  hasProblem(t, noPort, /^Deployment\/scaler: container scaler does not declare port "metrics" 9464/);
  hasProblem(
    t,
    problemsAfter(t, "base", (o) => (container(o, "chat").env.find((e: Any) => e.name === "METRICS_PORT").value = "9465")),
    /^Deployment\/chat: METRICS_PORT is "9465", but the pod is scraped on 9464/,
  );
  hasProblem(
    t,
    problemsAfter(t, "base", (o) => (container(o, "chat").env.find((e: Any) => e.name === "METRICS_PORT").value = "nine")),
    /^Deployment\/chat: METRICS_PORT/,
  );
});

test("scraping: namespace monitoring reaches every Parley pod's 9464 and nothing else of theirs; Envoy reaches the scaler", (t) => {
  const drop = (name: string) => (o: K8sObject[]) => o.splice(o.indexOf(find(o, "NetworkPolicy", name)), 1);
  const closed = problemsAfter(t, "controller", drop("allow-monitoring-to-metrics"));
  for (const pod of ["auth", "chat", "scaler", "parley-controller"]) {
    hasProblem(t, closed, new RegExp(`NetworkPolicies block Prometheus \\(namespace monitoring\\) → ${pod}:9464`));
  }
  const anyPort = problemsAfter(t, "base", (o) => delete find(o, "NetworkPolicy", "allow-monitoring-to-metrics").spec.ingress[0].ports);
  hasProblem(t, anyPort, /NetworkPolicies allow Prometheus \(namespace monitoring\) → chat:50051/);
  const anyone = problemsAfter(t, "base", (o) => delete find(o, "NetworkPolicy", "allow-monitoring-to-metrics").spec.ingress[0].from);
  hasProblem(t, anyone, /NetworkPolicies allow clients outside the cluster → scaler:9464/);
  hasProblem(t, problemsAfter(t, "base", drop("allow-envoy-to-scaler")), /NetworkPolicies block envoy → scaler:50051/);
});

test("the Prometheus operator's overlay: strict ServiceMonitors that scrape every Parley pod exactly once, on its metrics port", (t) => {
  const monitor = (o: K8sObject[], name: string): Any => find(o, "ServiceMonitor", name);
  hasProblem(
    t,
    problemsAfter(t, "prometheus-operator", (o) => (monitor(o, "parley-chat").spec.endpoints[0].intervall = "15s")),
    /^ServiceMonitor\/parley-chat: unknown field spec\.endpoints\[0\]\.intervall$/,
  );
  hasProblem(
    t,
    problemsAfter(t, "prometheus-operator", (o) => (monitor(o, "parley-chat").spec.endpoints = { port: "metrics" })),
    /^ServiceMonitor\/parley-chat: spec\.endpoints must be array/,
  );
  hasProblem(
    t,
    problemsAfter(t, "prometheus-operator", (o) => (monitor(o, "parley-auth").spec.endpoints[0].port = "http-metrics")),
    /^ServiceMonitor\/parley-auth endpoint 0: port is "http-metrics", expected "metrics"/,
  );
  hasProblem(
    t,
    problemsAfter(t, "prometheus-operator", (o) => (monitor(o, "parley-auth").spec.namespaceSelector = { any: true })),
    /^ServiceMonitor\/parley-auth: namespaceSelector reaches beyond namespace parley/,
  );
  const unlabelled = problemsAfter(
    t,
    "prometheus-operator",
    (o) => delete find(o, "Service", "chat-headless").metadata.labels["app.kubernetes.io/component"],
  );
  hasProblem(t, unlabelled, /^ServiceMonitor\/parley-chat: its selector matches no Service/);
  hasProblem(t, unlabelled, /^Deployment\/chat: no ServiceMonitor scrapes its pods/);
  const twice = problemsAfter(
    t,
    "prometheus-operator",
    (o) => (find(o, "Service", "scaler").metadata.labels = { "app.kubernetes.io/component": "scaler" }),
  );
  hasProblem(t, twice, /^Deployment\/scaler: its pods are scraped 2 times/);
  const wrongTarget = problemsAfter(t, "prometheus-operator", (o) => {
    const port = find(o, "Service", "controller-metrics").spec.ports[0];
    port.targetPort = 9090;
  });
  hasProblem(t, wrongTarget, /Service\/controller-metrics port metrics does not lead to parley-controller's port 9464/);
  hasProblem(
    t,
    problemsAfter(t, "prometheus-operator", (o) => o.splice(o.indexOf(monitor(o, "parley-controller")), 1)),
    /^Deployment\/parley-controller: no ServiceMonitor scrapes its pods/,
  );
  hasProblem(
    t,
    problemsAfter(t, "prometheus-operator", (o) => o.splice(0, o.length, ...o.filter((x) => x.kind !== "ServiceMonitor"))),
    /expected ServiceMonitors \(the Prometheus operator's overlay\), found none/,
  );
});

test("a kustomization that does not render is a problem with kubectl's message", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "parley-k8s-"));
  try {
    writeFileSync(
      join(dir, "kustomization.yaml"),
      "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - missing.yaml\n",
    );
    const missing = renderKustomization(dir);
    t.deepEqual(missing.objects, []);
    t.is(missing.problems.length, 1);
    hasProblem(t, missing.problems, /^kubectl kustomize .* failed: .*missing\.yaml/s);

    writeFileSync(join(dir, "kustomization.yaml"), "resources: [\n");
    hasProblem(t, renderKustomization(dir).problems, /^kubectl kustomize .* failed: /);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("YAML that does not parse, or a document that is not a mapping, is a problem", (t) => {
  hasProblem(t, parseManifests("kind: Service\nmetadata: {name: a\n", "broken.yaml").problems, /^broken\.yaml document 1: /);
  hasProblem(t, parseManifests("---\n- a\n- b\n", "list.yaml").problems, /^list\.yaml document 1 is not a mapping/);
  t.is(parseManifests("---\n---\nkind: Namespace\n", "ok.yaml").objects.length, 1);
});
