// A Connect or Subscribe stream with no client logic, for tests that must see
// exactly what the server wrote.
import { credentials, type ClientDuplexStream, type ClientReadableStream, type ClientWritableStream } from "@grpc/grpc-js";
import { ChatServiceClient, type ClientFrame, type Cursor, type Message, type ServerFrame, type Target } from "../../gen/parley/chat/v1/chat.js";
import { bearer } from "../../services/client/api.js";
import { Waiters } from "./clients.js";

/** How a stream ended. */
export interface FinalStatus {
  code: number;
  details: string;
}

/** What RawStream.until waits by default: every file that used raw streams waited this long. */
export const RAW_WAIT_MS = 30_000;

/**
 * Records every frame a Connect or Subscribe stream delivers, in order, and the
 * status it ends with. The reconnecting client (and so Inbox) drops duplicates,
 * reorders nothing visibly and hides the end of a stream by reconnecting; a
 * test of the delivery guarantees, of drain or of error answers needs what the
 * server itself wrote, so it reads a RawStream.
 *
 * `RawStream.connect` opens a Connect stream on a client of its own; the
 * constructor wraps a call made elsewhere (a Subscribe, a Connect on a shared
 * client, or one with a custom serializer), with `release` run by `close()`.
 */
export class RawStream<Call extends ClientReadableStream<ServerFrame> = ClientDuplexStream<ClientFrame, ServerFrame>> {
  /** Every frame, in order, with the frames of a `batch` in its place (so a test reads the same either way). */
  readonly frames: ServerFrame[] = [];
  /** The gRPC messages as they came: a `batch` frame is one of them. */
  readonly writes: ServerFrame[] = [];
  /** Resolves once the status has arrived and every frame before it has been read. */
  readonly done: Promise<FinalStatus>;
  /**
   * Set as soon as the status arrives, possibly before the last frames are
   * read: `status === undefined` means the stream is still open.
   */
  status: FinalStatus | undefined;
  private readonly waiters = new Waiters(() => `${this.frames.length} frames, status ${JSON.stringify(this.status)}`);

  /** A Connect stream for `token` on a ChatServiceClient of its own, closed with the stream. */
  static connect(address: string, token: string | undefined): RawStream {
    const client = new ChatServiceClient(address, credentials.createInsecure());
    return new RawStream(client.connect(bearer(token)), () => client.close());
  }

  constructor(
    readonly call: Call,
    private readonly release: () => void = () => undefined,
  ) {
    call.on("data", (frame: ServerFrame) => {
      this.writes.push(frame);
      this.frames.push(...(frame.batch ? frame.batch.frames : [frame]));
      this.waiters.wake();
    });
    // The status event carries the same information; without a listener an error status would throw.
    call.on("error", () => undefined);
    const statusArrived = new Promise<FinalStatus>((resolve) =>
      call.on("status", (s: FinalStatus) => {
        this.status = { code: s.code, details: s.details };
        this.waiters.wake();
        resolve(this.status);
      }),
    );
    const readToEnd = new Promise<void>((resolve) => call.on("end", () => resolve()));
    this.done = Promise.all([statusArrived, readToEnd]).then(([s]) => {
      this.waiters.wake();
      return s;
    });
  }

  /** Writes `hello` (Connect only); `acceptBatch` asks for `batch` frames (default false). */
  hello(cursors: Cursor[] = [], acceptBatch = false): this {
    this.writeFrame({ hello: { cursors, acceptBatch } });
    return this;
  }

  /** Writes a `send` frame (Connect only); its answer is a `sent` or `send_failed` frame. */
  send(to: Target, body: string, clientMsgId: string): void {
    this.writeFrame({ send: { clientMsgId, to, body } });
  }

  get caughtUp(): boolean {
    return this.frames.some((f) => f.caughtUp);
  }

  /** The pod named by the stream's `ready` frame. */
  get pod(): string | undefined {
    return this.frames.find((f) => f.ready)?.ready?.pod;
  }

  /** Message frames in the order they came, optionally of one conversation. */
  messages(conversationId?: string): Message[] {
    return this.frames
      .map((f) => f.message)
      .filter((m): m is Message => m !== undefined && (conversationId === undefined || m.conversationId === conversationId));
  }

  /** Message frames that came before `caught_up`. */
  replayed(): Message[] {
    const end = this.frames.findIndex((f) => f.caughtUp);
    return this.frames
      .slice(0, end === -1 ? this.frames.length : end)
      .map((f) => f.message)
      .filter((m): m is Message => m !== undefined);
  }

  /** The messages of the `sent` frames, in order. */
  acks(): Message[] {
    return this.frames.map((f) => f.sent?.message).filter((m): m is Message => m !== undefined);
  }

  /** Resolves once `check` holds, re-checked on every frame and on the status; rejects with `what` after `timeoutMs`. */
  until(check: () => boolean, what: string, timeoutMs = RAW_WAIT_MS): Promise<void> {
    return this.waiters.until(check, what, timeoutMs);
  }

  close(): void {
    this.call.cancel();
    this.release();
  }

  private writeFrame(frame: ClientFrame): void {
    const call = this.call as unknown as Partial<ClientWritableStream<ClientFrame>>;
    if (typeof call.write !== "function") throw new Error("this stream takes no frames: it is not a Connect stream");
    call.write(frame);
  }
}
