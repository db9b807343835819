// A load-generator child process run through tsx, spoken to over its IPC
// channel requests answered in order (memory-streams.ts, resume-clients.ts).
import { fork, type ChildProcess } from "node:child_process";

export class IpcWorker<Request extends object, Reply> {
  private readonly child: ChildProcess;
  private pending: { resolve(reply: Reply): void; reject(err: Error): void } | undefined;
  /** The last request's settling: requests go one after the other, so each reply answers the request before it. */
  private queue: Promise<unknown> = Promise.resolve();

  /** Starts `script` (a path) with stderr passed through. */
  constructor(script: string) {
    this.child = fork(script, [], { execArgv: ["--import", "tsx"], stdio: ["ignore", "ignore", "inherit", "ipc"] });
    this.child.on("message", (message: Reply) => {
      const pending = this.pending;
      this.pending = undefined;
      pending?.resolve(message);
    });
    this.child.once("exit", (code, signal) => this.pending?.reject(new Error(`worker ${script} exited (${code ?? signal})`)));
  }

  /** Sends `request` once earlier requests are answered, and resolves with its reply; rejects if the worker exits first. */
  request(request: Request): Promise<Reply> {
    const reply = this.queue.then(
      () =>
        new Promise<Reply>((resolve, reject) => {
          if (this.child.exitCode !== null || this.child.signalCode !== null) return reject(new Error("worker has exited"));
          this.pending = { resolve, reject };
          this.child.send(request);
        }),
    );
    this.queue = reply.catch(() => undefined);
    return reply;
  }

  /** Sends `request` (one the worker exits on), and SIGKILLs it if it is still there after `graceMs`. */
  async close(request: Request, graceMs = 10_000): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.child.once("exit", resolve));
    this.child.send(request);
    const timer = setTimeout(() => this.child.kill("SIGKILL"), graceMs);
    await exited;
    clearTimeout(timer);
  }
}
