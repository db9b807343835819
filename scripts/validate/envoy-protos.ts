// Envoy's v3 API protos, as vendored by the devDependency @grpc/grpc-js-xds
// under deps/ (envoy-api, xds, googleapis, protoc-gen-validate), loaded with
// protobufjs. The bootstrap and what it imports load up front; an extension
// named only by an `@type` (a filter, an access logger, ...) loads on first
// use, found through Envoy's layout rule that package a.b.v3 lives in
// folder a/b/v3/.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, isAbsolute, join, normalize } from "node:path";
import protobuf from "protobufjs";
import type { TypeResolver } from "./proto-walk.js";

const require = createRequire(import.meta.url);
const XDS_DEPS = join(dirname(require.resolve("@grpc/grpc-js-xds/package.json")), "deps");

/**
 * Where imports are looked up, in order. protobufjs bundles only some of
 * google/protobuf (any, duration, struct, ...); descriptor.proto, which the
 * annotation protos import, comes from the protobufjs package folder.
 */
export const INCLUDE_DIRS: readonly string[] = [
  ...["envoy-api", "xds", "googleapis", "protoc-gen-validate"].map((d) => join(XDS_DEPS, d)),
  dirname(require.resolve("protobufjs/package.json")),
];

/** The root message of an Envoy config file. */
export const BOOTSTRAP_TYPE = "envoy.config.bootstrap.v3.Bootstrap";

/** A protobufjs root over Envoy's protos that grows as types are asked for. */
export interface EnvoyProtos {
  root: protobuf.Root;
  bootstrap: protobuf.Type;
  /** By full name (no leading dot); null when no such message or enum exists. */
  resolve: TypeResolver;
}

let cached: EnvoyProtos | undefined;

/** Loads once per process (about 0.3 s); later calls share the root. */
export function loadEnvoyProtos(): EnvoyProtos {
  if (cached) return cached;
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => {
    if (isAbsolute(target)) return normalize(target);
    for (const dir of INCLUDE_DIRS) {
      const candidate = join(dir, target);
      if (existsSync(candidate)) return candidate;
    }
    throw new Error(`${target} not found under ${INCLUDE_DIRS.join(", ")}`);
  };
  root.loadSync("envoy/config/bootstrap/v3/bootstrap.proto", { keepCase: true });
  root.resolveAll();

  const triedPackages = new Set<string>();
  const lookup = (name: string) => {
    const found = root.lookup(`.${name}`);
    return found instanceof protobuf.Type || found instanceof protobuf.Enum ? found : null;
  };
  const resolve: TypeResolver = (name) => {
    const found = lookup(name);
    if (found) return found;
    // Try the longest prefix of the name that is a package with .proto files.
    const parts = name.split(".");
    for (let i = parts.length - 1; i >= 1; i--) {
      const pkg = parts.slice(0, i).join(".");
      const files = packageFiles(pkg);
      if (files.length === 0) continue;
      if (!triedPackages.has(pkg)) {
        triedPackages.add(pkg);
        root.loadSync(files, { keepCase: true });
        root.resolveAll();
      }
      return lookup(name);
    }
    return null;
  };
  cached = { root, bootstrap: root.lookupType(BOOTSTRAP_TYPE), resolve };
  return cached;
}

/** Every .proto file that declares `package pkg;`, in the folder the package name maps to. */
function packageFiles(pkg: string): string[] {
  const files: string[] = [];
  for (const dir of INCLUDE_DIRS) {
    const folder = join(dir, ...pkg.split("."));
    if (!existsSync(folder) || !statSync(folder).isDirectory()) continue;
    for (const entry of readdirSync(folder)) {
      if (!entry.endsWith(".proto")) continue;
      const file = join(folder, entry);
      if (new RegExp(`^package\\s+${pkg.replace(/\./g, "\\.")}\\s*;`, "m").test(readFileSync(file, "utf8"))) files.push(file);
    }
  }
  return files;
}
