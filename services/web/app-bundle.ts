import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { BuildOptions } from "esbuild";

/** One file the web server serves, by URL path. */
export interface StaticFile {
  contentType: string;
  body: Buffer;
}

const ENTRY = fileURLToPath(new URL("./app/main.tsx", import.meta.url));
/**
 * Where `npm run build` (scripts/build.ts) leaves the pre-built app, beside
 * this module's built copy (dist/services/web/app-built/). Next to the
 * TypeScript source the folder does not exist, so dev and tests bundle in memory.
 */
const PREBUILT = fileURLToPath(new URL("./app-built/", import.meta.url));
/** URL path → file name in PREBUILT, and its content type. */
const SERVED = [
  { path: "/", file: "index.html", contentType: "text/html; charset=utf-8" },
  { path: "/ops", file: "index.html", contentType: "text/html; charset=utf-8" },
  { path: "/app.js", file: "app.js", contentType: "text/javascript; charset=utf-8" },
  { path: "/app.css", file: "app.css", contentType: "text/css; charset=utf-8" },
] as const;

const INDEX_HTML = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>Parley</title>
    <link rel="stylesheet" href="/app.css" />
  </head>
  <body>
    <div id="app"></div>
    <script type="module" src="/app.js"></script>
  </body>
</html>
`;

const OPTIONS: BuildOptions = {
  entryPoints: [ENTRY],
  bundle: true,
  write: false,
  format: "esm",
  target: "es2022",
  minify: true,
  sourcemap: false,
  jsx: "automatic",
  jsxImportSource: "preact",
  outdir: "/",
  entryNames: "app",
  loader: { ".css": "css" },
  logLevel: "silent",
};

/**
 * The browser app (services/web/app, Preact): the files the web server serves,
 * by URL path (`/` and `/ops`, the operations dashboard: the same page,
 * whose main.tsx picks what to show; `/app.js`, `/app.css`). Read from the production build
 * when it is there (dist/, `npm run build`); otherwise bundled with esbuild in
 * memory, which takes about a tenth of a second and starts esbuild's helper
 * process. Called once at start-up. Rejects when the app does not compile.
 */
export async function buildWebApp(): Promise<Map<string, StaticFile>> {
  const files = new Map<string, StaticFile>();
  if (existsSync(join(PREBUILT, "index.html"))) {
    for (const { path, file, contentType } of SERVED) files.set(path, { contentType, body: readFileSync(join(PREBUILT, file)) });
    return files;
  }
  const bundled = await bundle();
  for (const { path, file, contentType } of SERVED) files.set(path, { contentType, body: bundled.get(file) ?? Buffer.alloc(0) });
  return files;
}

/**
 * Bundles the browser app into `dir` (index.html, app.js, app.css): the
 * pre-built files that buildWebApp() serves when this module runs from the
 * build in `dir`'s parent. For scripts/build.ts.
 */
export async function writeWebApp(dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  for (const [file, body] of await bundle()) writeFileSync(join(dir, file), body);
}

/** index.html, app.js and app.css (empty when the app imports no CSS), by file name. */
async function bundle(): Promise<Map<string, Buffer>> {
  // Loaded only here: a production server reads the pre-built files and never starts esbuild.
  const { build } = await import("esbuild");
  const result = await build(OPTIONS);
  const files = new Map<string, Buffer>([
    ["index.html", Buffer.from(INDEX_HTML)],
    ["app.css", Buffer.alloc(0)],
  ]);
  for (const file of result.outputFiles ?? []) files.set(file.path.split("/").pop() as string, Buffer.from(file.contents));
  return files;
}
