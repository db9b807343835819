// `npm test` itself (scripts/test.ts): a run starts Postgres in a temporary
// folder that holds a gigabyte or more of databases by the end, so the
// folder must be gone when the run ends, whether its tests pass or fail.
// Each case runs the runner on one small test file with TMPDIR pointing at
// a folder of its own, and looks at what is left there once it has exited.
import { spawn } from "node:child_process";
import { chmodSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import test from "ava";
import { scratchDir } from "./helpers/infra.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

function runRunner(tmp: string, args: string[]): Promise<number | null> {
  const runner = spawn(process.execPath, ["--import", "tsx", join(ROOT, "scripts", "test.ts"), ...args], {
    cwd: ROOT,
    env: { ...process.env, TMPDIR: tmp },
    stdio: "ignore",
  });
  return new Promise((resolve) => runner.on("exit", (code) => resolve(code)));
}

/** Processes whose command line names `path` (the runner's Postgres and Redis do). */
function processesUnder(path: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync("/proc").filter((entry) => /^\d+$/.test(entry))) {
    try {
      const args = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ");
      if (args.includes(path)) found.push(`${pid}: ${args}`);
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

const SMALL = "services/lib/bounded-cache.test.ts";
const runs = {
  passes: { args: [SMALL], code: 0 },
  // ava fails a run in which no test matches.
  fails: { args: [SMALL, "--match", "no test has this title"], code: 1 },
};

for (const [outcome, { args, code }] of Object.entries(runs)) {
  test.serial(`a test run that ${outcome} removes its temporary folder, after stopping its Postgres`, async (t) => {
    const tmp = scratchDir("runner");
    mkdirSync(tmp, { recursive: true });
    // Postgres runs as its own user and must reach the folder the runner makes here.
    chmodSync(tmp, 0o755);
    t.is(await runRunner(tmp, args), code);
    t.deepEqual(processesUnder(tmp), []);
    // tsx keeps its compile cache there too (tsx-<uid>): that one is not ours.
    t.deepEqual(
      readdirSync(tmp).filter((entry) => !/^tsx-\d+$/.test(entry)),
      [],
    );
  });
}
