import { fileURLToPath } from "node:url";
import { build } from "esbuild";

/** One file the web server serves, by URL path. */
export interface StaticFile {
  contentType: string;
  body: Buffer;
}

const ENTRY = fileURLToPath(new URL("./app/main.tsx", import.meta.url));

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

/**
 * Bundles the browser app (services/web/app, Preact) with esbuild, in
 * memory: the files the web server serves, by URL path (`/`, `/ops`, `/app.js`,
 * `/app.css`). Takes about a tenth of a second; called once at start-up.
 * Rejects when the app does not compile.
 */
export async function buildWebApp(): Promise<Map<string, StaticFile>> {
  const result = await build({
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
  });
  const index = { contentType: "text/html; charset=utf-8", body: Buffer.from(INDEX_HTML) };
  // The operations dashboard is the same app at /ops (services/web/app/main.tsx picks the page).
  const files = new Map<string, StaticFile>([
    ["/", index],
    ["/ops", index],
  ]);
  for (const file of result.outputFiles) {
    const path = `/${file.path.split("/").pop()}`;
    const contentType = path.endsWith(".css") ? "text/css; charset=utf-8" : "text/javascript; charset=utf-8";
    files.set(path, { contentType, body: Buffer.from(file.contents) });
  }
  if (!files.has("/app.css")) files.set("/app.css", { contentType: "text/css; charset=utf-8", body: Buffer.alloc(0) });
  return files;
}
