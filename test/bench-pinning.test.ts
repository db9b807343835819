// `npm run bench -- --pin` (scripts/bench/pinning.ts): the split of the CPUs,
// and taskset's pinning as the bench relies on it: a pinned process keeps to
// its CPUs, and so do the processes it starts afterwards (Postgres' backends).
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { cpus } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import test from "ava";
import { allowedCpus, describePinning, pin, pinningFor } from "../scripts/bench/pinning.js";

test("the servers get every CPU but the last, the load generator the last; one CPU has nothing to split", (t) => {
  t.deepEqual(pinningFor(2), { servers: "0", loadGenerator: "1" });
  t.deepEqual(pinningFor(4), { servers: "0-2", loadGenerator: "3" });
  t.is(pinningFor(1), undefined);
  t.regex(describePinning(pinningFor(2)), /servers .* on CPU 0, the load generator and the sampler on CPU 1/);
  t.regex(describePinning(undefined), /^CPU pinning: none/);
});

test("a pinned process keeps to its CPU, and a process it starts afterwards inherits it", async (t) => {
  // A shell that starts a child only after it has been pinned.
  const shell = spawn("sh", ["-c", "sleep 0.5; sleep 30 & wait"], { stdio: "ignore" });
  t.teardown(() => shell.kill("SIGKILL"));
  const everything = allowedCpus(shell.pid as number);
  const last = String(cpus().length - 1);
  pin(shell.pid as number, last);
  t.is(allowedCpus(shell.pid as number), last);
  t.not(everything, last, "it could run anywhere before (this machine has more than one CPU)");
  await sleep(1_000);
  const children = readFileSync(`/proc/${shell.pid}/task/${shell.pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean);
  t.is(children.length, 1, "the shell started its sleep");
  t.teardown(() => process.kill(Number(children[0]), "SIGKILL"));
  t.is(allowedCpus(Number(children[0])), last);
});

test("pinning a process that has exited is not an error", (t) => {
  t.notThrows(() => pin(2 ** 22 + 12_345, "0"));
});
