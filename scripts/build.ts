// `npm run build`: the production build in dist/ (git-ignored). esbuild
// bundles each entry point's own code into one ES module for Node 20, with a
// source map, leaving node_modules as they are (imported at run time); the
// files the code reads at run time (the Lua scripts, the migrations) and the
// pre-built browser app go where the code looks for them. `npm start` runs
// it before starting, so `npm ci && npm start` works on a fresh clone.
// `--out DIR` builds elsewhere (a test builds into .tmp/), `--verbose` prints the time.
//
// Where the code looks: modules find their files relative to their own
// import.meta.url (`new URL("./lua/x.lua", import.meta.url)`). In a bundle
// import.meta.url is the bundle's URL, so each module's `import.meta.url` is
// rewritten to the URL its source file would have under dist/
// (services/chat/presence-redis.ts → dist/services/chat/presence-redis.js),
// and the files are copied to the same places under dist/.
import { cpSync, existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { build, type Plugin } from "esbuild";
import { writeWebApp } from "../services/web/app-bundle.js";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const { values } = parseArgs({ options: { out: { type: "string", default: "dist" }, verbose: { type: "boolean", default: false } } });
/**
 * The output folder (`--out`, default dist/). It must lie inside the repository:
 * the bundles import node_modules from there.
 */
const OUT = join(ROOT, values.out);

/** The processes the image, `npm start`, the scripts and the benchmark run. */
const ENTRIES = [
  "services/main.ts",
  "services/controller/main.ts",
  "services/db/migrate-cli.ts",
  "services/client/terminal.ts",
  // The benchmark's Socket.IO servers and transport-floor relays, so that every system runs built JavaScript. Not in the image (no scripts/ there).
  ...["scripts/bench/socketio-server.ts", "scripts/bench/grpc-relay-server.ts"].filter((entry) => existsSync(join(ROOT, entry))),
];

/**
 * Folders the code reads at run time, copied to the same place under dist/:
 * the migrations, and every service's Lua scripts (any `services/<name>/lua`,
 * so that a new service's scripts cannot be forgotten).
 */
const ASSETS = [
  "services/db/migrations",
  ...readdirSync(join(ROOT, "services"))
    .map((name) => `services/${name}/lua`)
    .filter((folder) => existsSync(join(ROOT, folder))),
];

/**
 * Rewrites `import.meta.url` in the repository's own modules to the URL the
 * module would have in dist/, relative to the bundle being built (`outFile`).
 */
function mirrorImportMetaUrl(outFile: string): Plugin {
  return {
    name: "mirror-import-meta-url",
    setup(b) {
      b.onLoad({ filter: /\.tsx?$/ }, (args) => {
        if (args.path.includes("/node_modules/")) return undefined;
        const source = readFileSync(args.path, "utf8");
        if (!source.includes("import.meta.url")) return undefined;
        const mirrored = join(OUT, relative(ROOT, args.path)).replace(/\.tsx?$/, ".js");
        let rel = relative(dirname(outFile), mirrored);
        if (!rel.startsWith(".")) rel = `./${rel}`;
        const contents = source.replaceAll("import.meta.url", `new URL(${JSON.stringify(rel)}, import.meta.url).href`);
        return { contents, loader: args.path.endsWith(".tsx") ? "tsx" : "ts" };
      });
    },
  };
}

const started = performance.now();
rmSync(OUT, { recursive: true, force: true });
await Promise.all([
  ...ENTRIES.map((entry) => {
    const outFile = join(OUT, entry.replace(/\.ts$/, ".js"));
    return build({
      entryPoints: [join(ROOT, entry)],
      outfile: outFile,
      bundle: true,
      platform: "node",
      target: "node20",
      format: "esm",
      packages: "external",
      sourcemap: true,
      logLevel: "warning",
      plugins: [mirrorImportMetaUrl(outFile)],
    });
  }),
  writeWebApp(join(OUT, "services", "web", "app-built")),
]);
for (const folder of ASSETS) cpSync(join(ROOT, folder), join(OUT, folder), { recursive: true });
if (values.verbose) process.stdout.write(`built dist/ in ${Math.round(performance.now() - started)} ms\n`);
