// The load generator's handle on the sampler process (sampler.ts): it forks
// it, hands it the process groups to measure at the start of a window, and
// gets their CPU and RSS back at the end, so that no sampling runs in the
// load generator's own event loop.
import { fork, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { groupPids, type ProcGroup, type ProcUsage } from "./procstat.js";

const SAMPLER_MAIN = fileURLToPath(new URL("./sampler.ts", import.meta.url));
const REPLY_TIMEOUT_MS = 10_000;

/** A group as the sampler process receives it: its pids fixed for the window, its children found there. */
interface GroupSpec {
  name: string;
  pids: number[];
  withChildren?: boolean;
  proportional?: boolean;
}

export type SamplerRequest = { type: "begin"; groups: GroupSpec[]; intervalMs: number } | { type: "end" };
export type SamplerReply = { type: "ready" } | { type: "begun" } | { type: "usage"; procs: ProcUsage[] };

export class SamplerProcess {
  private constructor(private readonly child: ChildProcess) {}

  /** Forks the sampler and waits until it listens. */
  static async start(): Promise<SamplerProcess> {
    const child = fork(SAMPLER_MAIN, [], { execArgv: ["--import", "tsx"], stdio: ["ignore", "ignore", "inherit", "ipc"] });
    const sampler = new SamplerProcess(child);
    try {
      await sampler.reply("ready");
    } catch (err) {
      sampler.stop();
      throw err;
    }
    return sampler;
  }

  /**
   * Starts measuring `groups` (RSS sampled every `intervalMs` for the peak).
   * Their pids are taken now: a backend restarted during the window is not followed.
   */
  async begin(groups: ProcGroup[], intervalMs = 500): Promise<void> {
    const specs = groups.map((g) => ({
      name: g.name,
      // The sampler finds the children itself, at each sample; here only the parents.
      pids: g.withChildren ? g.pids() : groupPids(g),
      withChildren: g.withChildren,
      proportional: g.proportional,
    }));
    const begun = this.reply("begun");
    this.request({ type: "begin", groups: specs, intervalMs });
    await begun;
  }

  /** The groups' usage since `begin`, and the sampler's own as the group "sampler". */
  async end(): Promise<ProcUsage[]> {
    const usage = this.reply("usage");
    this.request({ type: "end" });
    const reply = await usage;
    return reply.type === "usage" ? reply.procs : [];
  }

  stop(): void {
    if (this.child.connected) this.child.disconnect();
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGKILL");
  }

  private request(request: SamplerRequest): void {
    this.child.send(request);
  }

  private reply(type: SamplerReply["type"]): Promise<SamplerReply> {
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        this.child.off("message", onMessage);
        this.child.off("exit", onExit);
      };
      const onMessage = (reply: SamplerReply) => {
        if (reply.type !== type) return;
        done();
        resolve(reply);
      };
      const onExit = (code: number | null) => {
        done();
        reject(new Error(`the sampler process exited (code ${code}) before replying ${type}`));
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`the sampler process did not reply ${type} within ${REPLY_TIMEOUT_MS} ms`));
      }, REPLY_TIMEOUT_MS);
      this.child.on("message", onMessage);
      this.child.once("exit", onExit);
    });
  }
}
