// Offline validation of k8s/: no cluster runs on the development machines or in
// CI, so this is what stands between a manifest change and a failed deploy.
// Each kustomization is rendered with `kubectl kustomize` (no cluster needed),
// every rendered object is checked against its kubernetes-models 4.x schema
// (the ScaledObject against @kubernetes-models/keda, the ServiceMonitors
// against @kubernetes-models/prometheus-operator) and for unknown fields, and
// then against Parley's own rules (k8s-rules.ts).
//
//   npx tsx scripts/validate/k8s.ts            # every overlay
//   npx tsx scripts/validate/k8s.ts keda       # one
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseAllDocuments } from "yaml";
import { MODELS, validateObject, type K8sObject } from "./k8s-models.js";
import { checkParleyRules, type Expectations } from "./k8s-rules.js";
import type { Autoscaler } from "./k8s-rules-scaling.js";
import { preloadTypes } from "./k8s-strict-fields.js";

/** The repository root, whatever the working directory. */
export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

/**
 * Every kustomization that must render, and the autoscaler each brings. An
 * overlay applied `alongside` another (the Prometheus operator's monitors,
 * beside the controller's overlay, which has every component) is validated
 * together with it, so its references can be checked.
 */
export const OVERLAYS = {
  base: { dir: "k8s/base", autoscaler: "none" },
  keda: { dir: "k8s/overlays/keda", autoscaler: "keda" },
  controller: { dir: "k8s/overlays/controller", autoscaler: "controller" },
  "prometheus-operator": { dir: "k8s/overlays/prometheus-operator", autoscaler: "controller", alongside: "controller" },
} as const satisfies Record<string, Overlay>;
export type OverlayName = keyof typeof OVERLAYS;

interface Overlay {
  dir: string;
  autoscaler: Autoscaler;
  alongside?: string;
}

/** What an overlay's rules expect of its rendered objects. */
export function expectationsOf(name: OverlayName, envoyConfig: string): Expectations {
  return { autoscaler: OVERLAYS[name].autoscaler, envoyConfig, serviceMonitors: name === "prometheus-operator" };
}

/** Renders one of OVERLAYS, together with the overlay it is applied beside, if any. */
export function renderOverlay(name: OverlayName): Rendered {
  const overlay: Overlay = OVERLAYS[name];
  const own = renderKustomization(join(REPO_ROOT, overlay.dir));
  if (!overlay.alongside) return own;
  const beside = renderOverlay(overlay.alongside as OverlayName);
  return { objects: [...beside.objects, ...own.objects], problems: [...beside.problems, ...own.problems] };
}

/** Objects from a render or a parse, and what went wrong on the way. */
export interface Rendered {
  objects: K8sObject[];
  problems: string[];
}

/**
 * Renders one kustomization directory with `kubectl kustomize`. A failure (a
 * broken kustomization, a missing file, no kubectl) is a problem carrying
 * kubectl's own message, never an exception.
 */
export function renderKustomization(dir: string): Rendered {
  let text: string;
  try {
    text = execFileSync("kubectl", ["kustomize", dir], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], maxBuffer: 64 * 1024 * 1024 });
  } catch (err) {
    const failure = err as NodeJS.ErrnoException & { stderr?: string };
    if (failure.code === "ENOENT") return { objects: [], problems: ["kubectl is not installed; it renders the kustomizations (kubectl kustomize)"] };
    return { objects: [], problems: [`kubectl kustomize ${dir} failed: ${(failure.stderr || failure.message).trim()}`] };
  }
  return parseManifests(text, dir);
}

/** Splits multi-document YAML into objects; a document that does not parse, or is not a mapping, is a problem. */
export function parseManifests(text: string, source: string): Rendered {
  const rendered: Rendered = { objects: [], problems: [] };
  for (const [i, doc] of parseAllDocuments(text).entries()) {
    if (doc.errors.length > 0) {
      rendered.problems.push(`${source} document ${i + 1}: ${doc.errors[0].message}`);
      continue;
    }
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) continue;
    if (typeof value !== "object" || Array.isArray(value)) rendered.problems.push(`${source} document ${i + 1} is not a mapping`);
    else rendered.objects.push(value as K8sObject);
  }
  return rendered;
}

/** Schema, unknown-field and Parley checks over already rendered objects (what the tests mutate). */
export function validateObjects(objects: K8sObject[], expect: Expectations): string[] {
  preloadTypes(Object.values(MODELS).map((m) => m.typesModule));
  return [...objects.flatMap(validateObject), ...checkParleyRules(objects, expect)];
}

/** The Envoy configuration the ConfigMap must carry: envoy/envoy.yaml as committed. */
export function readEnvoyConfig(): string {
  return readFileSync(join(REPO_ROOT, "envoy", "envoy.yaml"), "utf8");
}

/** Renders one of OVERLAYS and validates everything in it; no problems means it may be applied. */
export function validateOverlay(name: OverlayName): Rendered {
  const rendered = renderOverlay(name);
  if (rendered.objects.length === 0) return rendered;
  let envoyConfig: string;
  try {
    envoyConfig = readEnvoyConfig();
  } catch (err) {
    return { objects: rendered.objects, problems: [...rendered.problems, `cannot read envoy/envoy.yaml: ${String(err)}`] };
  }
  return {
    objects: rendered.objects,
    problems: [...rendered.problems, ...validateObjects(rendered.objects, expectationsOf(name, envoyConfig))],
  };
}

function main(names: string[]): number {
  const unknown = names.filter((n) => !Object.hasOwn(OVERLAYS, n));
  if (unknown.length > 0) {
    process.stderr.write(`unknown overlay ${unknown.join(", ")}; choose from ${Object.keys(OVERLAYS).join(", ")}\n`);
    return 2;
  }
  let failed = false;
  for (const name of (names.length > 0 ? names : Object.keys(OVERLAYS)) as OverlayName[]) {
    const { objects, problems } = validateOverlay(name);
    failed ||= problems.length > 0;
    const overlay: Overlay = OVERLAYS[name];
    const beside = overlay.alongside ? ` beside ${OVERLAYS[overlay.alongside as OverlayName].dir}` : "";
    process.stdout.write(`${problems.length === 0 ? "ok  " : "FAIL"} ${overlay.dir}${beside} (${objects.length} objects)\n`);
    for (const problem of problems) process.stdout.write(`     - ${problem}\n`);
  }
  return failed ? 1 : 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) process.exitCode = main(process.argv.slice(2));
