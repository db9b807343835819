// Unknown-field detection for rendered Kubernetes objects, driven by the same
// kubernetes-models packages that provide the schemas: their `.d.ts` files
// declare every field (`IDeployment`, `IProbe`, …), and the TypeScript checker
// walks those declarations alongside the data. kubernetes-models' compiled
// schemas cannot do this: they accept any extra property.
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";

const HERE = dirname(fileURLToPath(import.meta.url));
/** A file that exists only in memory; it sits here so that node_modules resolves from the repo. */
const VIRTUAL_FILE = join(HERE, "__k8s-model-types__.ts");

interface TypeProgram {
  checker: ts.TypeChecker;
  /** Declared type of `I<Kind>` per types module, filled on first use. */
  types: Map<string, ts.Type | undefined>;
}

let program: { modules: string[]; value: TypeProgram } | undefined;

/**
 * Paths (like `spec.template.spec.containers[0].readinesProbe`) of every field
 * in `object` that its declared type does not have. Values of map-like fields
 * (`labels`, `data`, a ScaledObject trigger's `metadata`) are free-form and not
 * checked; wrong value types are the schema's job, not this walk's.
 */
export function unknownFields(object: Record<string, unknown>, typesModule: string): string[] {
  const { checker, types } = ensureProgram([typesModule]);
  const type = types.get(typesModule);
  if (!type) return [`(cannot load the type declarations from ${typesModule})`];
  const found: string[] = [];
  walk(checker, object, type, "", found);
  return found;
}

function walk(checker: ts.TypeChecker, value: unknown, declared: ts.Type, path: string, found: string[]): void {
  if (value === null || typeof value !== "object") return;
  const type = checker.getNonNullableType(declared);
  if (type.flags & (ts.TypeFlags.Any | ts.TypeFlags.Unknown | ts.TypeFlags.NonPrimitive)) return;
  const members = (type.isUnion() ? type.types : [type]).filter((t) => t.flags & ts.TypeFlags.Object);
  if (Array.isArray(value)) {
    const array = members.find((t) => checker.isArrayType(t)) as ts.TypeReference | undefined;
    const element = array ? checker.getTypeArguments(array)[0] : undefined;
    if (element) for (const [i, item] of value.entries()) walk(checker, item, element, `${path}[${i}]`, found);
    return;
  }
  const shapes = members.filter((t) => !checker.isArrayType(t));
  if (shapes.length === 0) return; // an object where a scalar belongs: the schema reports it
  const index = shapes.map((t) => t.getStringIndexType()).find((t) => t !== undefined);
  const fields = new Map<string, ts.Symbol>();
  for (const shape of shapes) for (const symbol of checker.getPropertiesOfType(shape)) fields.set(symbol.name, symbol);
  for (const [key, child] of Object.entries(value)) {
    const childPath = path === "" ? key : `${path}.${key}`;
    const symbol = fields.get(key);
    if (symbol) walk(checker, child, checker.getTypeOfSymbol(symbol), childPath, found);
    else if (index) walk(checker, child, index, childPath, found);
    else found.push(childPath);
  }
}

/** Loads the declarations of every listed module in one program build, instead of one build per new kind. */
export function preloadTypes(typesModules: string[]): void {
  ensureProgram(typesModules);
}

function ensureProgram(typesModules: string[]): TypeProgram {
  const missing = typesModules.filter((m) => !program?.modules.includes(m));
  if (program && missing.length === 0) return program.value;
  const modules = [...new Set([...(program?.modules ?? []), ...missing])];
  program = { modules, value: buildProgram(modules) };
  return program.value;
}

function buildProgram(modules: string[]): TypeProgram {
  const source = modules
    .map((m, i) => `import type { I${m.slice(m.lastIndexOf("/") + 1)} as T${i} } from "${m}";\nexport type T${i}Alias = T${i};`)
    .join("\n");
  const options: ts.CompilerOptions = {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    strict: true,
    skipLibCheck: true,
    noEmit: true,
    types: [],
  };
  const host = ts.createCompilerHost(options, true);
  const { getSourceFile, fileExists, readFile } = host;
  host.getSourceFile = (name, version, ...rest) =>
    name === VIRTUAL_FILE ? ts.createSourceFile(name, source, version, true) : getSourceFile.call(host, name, version, ...rest);
  host.fileExists = (name) => name === VIRTUAL_FILE || fileExists.call(host, name);
  host.readFile = (name) => (name === VIRTUAL_FILE ? source : readFile.call(host, name));
  const built = ts.createProgram([VIRTUAL_FILE], options, host);
  const checker = built.getTypeChecker();
  const file = built.getSourceFile(VIRTUAL_FILE);
  const types = new Map<string, ts.Type | undefined>();
  const exports = file ? checker.getExportsOfModule(checker.getSymbolAtLocation(file)!) : [];
  modules.forEach((m, i) => {
    const alias = exports.find((s) => s.name === `T${i}Alias`);
    const type = alias ? checker.getDeclaredTypeOfSymbol(alias) : undefined;
    // An unresolved import gives the error type, which would accept anything: treat it as missing.
    types.set(m, type && !(type.flags & ts.TypeFlags.Any) ? type : undefined);
  });
  return { checker, types };
}
