// `npm test`: installs what is missing, starts a real Postgres 15 in a
// temporary folder, runs ava (each test file makes its own database and, when
// it needs one, its own Redis under the same folder), and stops everything
// afterwards, even when a test fails or the run is interrupted.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureInstalled, startPostgres, stopAllPostgres, stopAllRedis, type LocalPostgres } from "./local-services.js";

const log = (line: string) => process.stderr.write(`[test] ${line}\n`);
const dir = mkdtempSync(join(tmpdir(), "parley-test-"));
let postgres: LocalPostgres | undefined;

/**
 * Stops the servers, then removes the folder: its databases take a gigabyte
 * or more after a full run, so it must not outlive the run. The removal waits
 * for Postgres to exit, which still writes there while it shuts down.
 */
async function cleanup(): Promise<void> {
  stopAllRedis(join(dir, "redis"));
  // The run's Postgres, and any private one a test file started and could not stop.
  await stopAllPostgres(dir);
  postgres = undefined;
  rmSync(dir, { recursive: true, force: true });
}
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => void cleanup().finally(() => process.exit(130)));
}

let code = 1;
try {
  ensureInstalled(log);
  postgres = await startPostgres(dir);
  log(`Postgres on ${postgres.url}`);
  const ava = spawn(join("node_modules", ".bin", "ava"), process.argv.slice(2), {
    stdio: "inherit",
    env: { ...process.env, PARLEY_TEST_PG_URL: postgres.url, PARLEY_TEST_TMP: dir, LOG_LEVEL: process.env.LOG_LEVEL ?? "silent" },
  });
  code = await new Promise<number>((resolve) => ava.on("exit", (c, signal) => resolve(c ?? (signal ? 1 : 0))));
} catch (err) {
  log(`failed: ${err instanceof Error ? err.message : String(err)}`);
} finally {
  await cleanup();
}
process.exit(code);
