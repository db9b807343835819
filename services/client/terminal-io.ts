import { clearScreenDown, createInterface, cursorTo, moveCursor, type Interface } from "node:readline";
import { Writable } from "node:stream";

/**
 * Readline's view of the terminal: everything passes through, except while a
 * password is typed, when the echo is swallowed. It forwards the size so that
 * readline still wraps long lines correctly.
 */
class EchoGate extends Writable {
  muted = false;

  constructor(private readonly target: NodeJS.WriteStream) {
    super();
    target.on("resize", () => this.emit("resize"));
  }

  get isTTY(): boolean {
    return this.target.isTTY;
  }

  get columns(): number {
    return this.target.columns;
  }

  get rows(): number {
    return this.target.rows;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (!this.muted) this.target.write(chunk);
    // Synchronous on purpose: readline's output must not fall behind what print() writes directly.
    callback();
  }
}

/**
 * The terminal: typed lines come in through a queue, so lines piped in ahead
 * of time are never lost, and output goes above the prompt without garbling
 * what is being typed. When stdin is not a TTY (a script pipes commands in)
 * there is no prompt, no echo and no cursor movement: just lines.
 */
export class TerminalIo {
  /** Whether a person is typing: stdin is a TTY. */
  readonly interactive: boolean;
  private readonly rl: Interface;
  private readonly gate: EchoGate;
  /** Readline keeps this very array as its history, which lets answers (passwords) be taken out again. */
  private readonly history: string[] = [];
  private readonly queued: string[] = [];
  private waiter: ((line: string | undefined) => void) | undefined;
  private ended = false;
  /** Whether the prompt comes back after each line (command mode) rather than waiting for the next question. */
  private repromptAfterLine = false;
  private readonly typingListeners = new Set<(line: string) => void>();

  constructor(
    input: NodeJS.ReadStream = process.stdin,
    private readonly output: NodeJS.WriteStream = process.stdout,
  ) {
    this.interactive = Boolean(input.isTTY);
    this.gate = new EchoGate(output);
    this.rl = createInterface({ input, output: this.gate, terminal: this.interactive, history: this.history, historySize: 200 });
    this.rl.on("line", (line) => this.onLine(line));
    this.rl.on("close", () => this.onEnd());
    // Ctrl-C leaves like Ctrl-D does: the session sees the end of input and quits cleanly.
    this.rl.on("SIGINT", () => this.rl.close());
    if (this.interactive) {
      input.on("keypress", () => {
        for (const listener of this.typingListeners) listener(this.rl.line);
      });
    }
  }

  /** Prints a line (or several) above the prompt and redraws the prompt with the partly typed text. */
  print(text: string): void {
    // Outside command mode no prompt is on screen (a question was just answered): nothing to redraw.
    if (!this.interactive || this.ended || !this.repromptAfterLine) {
      this.output.write(`${text}\n`);
      return;
    }
    const rows = this.clearPrompt();
    // To redraw, readline first moves up by the rows it believes the cursor is below the
    // prompt's start (prevRows, undocumented; stale after a paste that wrapped). Blank rows
    // give it that room, so the prompt lands just under the text either way.
    const readlineRows = (this.rl as unknown as { prevRows?: number }).prevRows ?? rows;
    this.output.write(`${text}\n${"\n".repeat(readlineRows)}`);
    this.rl.prompt(true);
  }

  /** Switches to command mode with this prompt: it is shown at once and again after every line. */
  commandPrompt(prompt: string): void {
    this.repromptAfterLine = true;
    this.rl.setPrompt(prompt);
    if (this.interactive && !this.ended) this.rl.prompt(true);
  }

  /** Asks one question and resolves with the answer, or undefined once input has ended. */
  async ask(question: string, options: { hidden?: boolean } = {}): Promise<string | undefined> {
    this.repromptAfterLine = false;
    if (!this.interactive) {
      this.output.write(`${question.trimEnd()}\n`);
      return this.nextLine();
    }
    this.rl.setPrompt(question);
    this.rl.prompt();
    this.gate.muted = options.hidden === true;
    try {
      const answer = await this.nextLine();
      // Up-arrow recalls commands, not answers, and never a password.
      if (answer !== undefined && this.history[0] === answer) this.history.shift();
      return answer;
    } finally {
      if (this.gate.muted) {
        this.gate.muted = false;
        this.output.write("\n");
      }
    }
  }

  /** The next line typed or piped in; undefined when input has ended or `signal` aborts first. */
  nextLine(signal?: AbortSignal): Promise<string | undefined> {
    const line = this.queued.shift();
    if (line !== undefined) return Promise.resolve(line);
    if (this.ended || signal?.aborted) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const onAbort = () => {
        this.waiter = undefined;
        resolve(undefined);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.waiter = (value) => {
        signal?.removeEventListener("abort", onAbort);
        this.waiter = undefined;
        resolve(value);
      };
    });
  }

  /** Calls `listener` with the line as it stands after each key press (interactive only); returns an unsubscribe. */
  onTyping(listener: (line: string) => void): () => void {
    this.typingListeners.add(listener);
    return () => this.typingListeners.delete(listener);
  }

  /** Stops reading stdin, so that the process can exit. */
  close(): void {
    this.rl.close();
  }

  private onLine(line: string): void {
    if (this.waiter) this.waiter(line);
    else this.queued.push(line);
    if (this.repromptAfterLine && this.interactive && !this.ended) this.rl.prompt();
  }

  private onEnd(): void {
    if (this.ended) return;
    this.ended = true;
    // A command prompt goes away; an unanswered question gets its line ended.
    if (this.interactive && this.repromptAfterLine) this.clearPrompt();
    else if (this.interactive) this.output.write("\n");
    this.waiter?.(undefined);
  }

  /** Erases the prompt and the text typed after it; returns how many rows below the prompt's start the cursor was. */
  private clearPrompt(): number {
    const { rows } = this.rl.getCursorPos();
    cursorTo(this.output, 0);
    if (rows > 0) moveCursor(this.output, 0, -rows);
    clearScreenDown(this.output);
    return rows;
  }
}
