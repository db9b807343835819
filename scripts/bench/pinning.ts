// `--pin`: the servers on some CPUs and the load generator on the others,
// with util-linux's taskset, the same way for both systems, so that neither
// side's CPU time is taken by the other's. The load generator is the bench's
// own process, its worker processes and the sampler (they inherit its CPUs);
// the servers are the pods, Postgres (the postmaster and every process it
// has or forks later) and Redis, or Socket.IO's servers and Redis.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";

/** CPU lists as taskset takes them ("0", "0-2"). */
export interface Pinning {
  servers: string;
  loadGenerator: string;
}

/**
 * The split for `cpus` CPUs: the last one for the load generator, the rest for
 * the servers. Undefined with fewer than 2 CPUs (there is nothing to split).
 */
export function pinningFor(cpus: number): Pinning | undefined {
  if (cpus < 2) return undefined;
  return { servers: cpus === 2 ? "0" : `0-${cpus - 2}`, loadGenerator: String(cpus - 1) };
}

/**
 * Pins `pid` and all its threads to `cpus` (`taskset -a -p -c`); threads and
 * processes it creates later inherit them. A process that has exited by now is
 * skipped; a missing taskset throws.
 */
export function pin(pid: number, cpus: string): void {
  try {
    execFileSync("taskset", ["-a", "-p", "-c", cpus, String(pid)], { stdio: ["ignore", "ignore", "pipe"] });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") throw new Error("--pin needs taskset (util-linux)");
    // No such process: it exited between being listed and being pinned.
  }
}

/** The CPUs `pid` may run on, as /proc lists them ("0", "0-1"). */
export function allowedCpus(pid: number): string {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return /Cpus_allowed_list:\s*(\S+)/.exec(status)?.[1] ?? "";
}

/** What the output says about pinning. */
export function describePinning(pinning: Pinning | undefined): string {
  return pinning
    ? `CPU pinning (--pin, taskset): servers (pods, Postgres, Redis; Socket.IO's servers, Redis) on CPU ${pinning.servers}, the load generator and the sampler on CPU ${pinning.loadGenerator}`
    : "CPU pinning: none (servers and load generator share every CPU; --pin separates them)";
}
