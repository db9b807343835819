// gRPC-web at the byte level, for the gateway's tests: frames built by hand,
// requests sent over plain HTTP/1.1 (node:http), and the response read chunk
// by chunk as it arrives, so that tests see what a browser would.
import { request, type IncomingHttpHeaders } from "node:http";
import { type DescMessage, fromBinary, type MessageShape, toBinary, create, type MessageInitShape } from "@bufbuild/protobuf";

/** One gRPC-web frame: flag byte, big-endian length, payload. */
export function frame(payload: Uint8Array, flag = 0): Buffer {
  const header = Buffer.alloc(5);
  header.writeUInt8(flag, 0);
  header.writeUInt32BE(payload.length, 1);
  return Buffer.concat([header, payload]);
}

/** The request body of a unary or server-streaming call: one data frame holding `init`. */
export function messageFrame<Desc extends DescMessage>(schema: Desc, init: MessageInitShape<Desc>): Buffer {
  return frame(toBinary(schema, create(schema, init)));
}

export interface ParsedFrame {
  flag: number;
  payload: Buffer;
}

/**
 * Splits a binary body into frames; throws if it ends inside one, unless
 * `partial` is "ignore" (a stream still arriving: the whole frames so far).
 */
export function parseFrames(body: Buffer, partial: "throw" | "ignore" = "throw"): ParsedFrame[] {
  const frames: ParsedFrame[] = [];
  let at = 0;
  while (at < body.length) {
    const complete = body.length - at >= 5 && body.length - at - 5 >= body.readUInt32BE(at + 1);
    if (!complete && partial === "ignore") break;
    if (body.length - at < 5) throw new Error(`body ends inside a frame header at byte ${at}`);
    const size = body.readUInt32BE(at + 1);
    if (body.length - at - 5 < size) throw new Error(`body ends inside a frame at byte ${at}`);
    frames.push({ flag: body[at] as number, payload: body.subarray(at + 5, at + 5 + size) });
    at += 5 + size;
  }
  return frames;
}

/** The trailers frame's block as a map (`name:value\r\n` lines). */
export function parseTrailers(payload: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of payload.toString("latin1").split("\r\n")) {
    if (line === "") continue;
    const colon = line.indexOf(":");
    out[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return out;
}

export function decodeMessage<Desc extends DescMessage>(schema: Desc, f: ParsedFrame): MessageShape<Desc> {
  return fromBinary(schema, f.payload);
}

export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  /** The body chunks, as they arrived. */
  chunks: Buffer[];
  body: Buffer;
}

export interface RawCall {
  /** Resolves with the status and headers as soon as they arrive. */
  headers: Promise<{ status: number; headers: IncomingHttpHeaders }>;
  /** Resolves when the body ends. */
  done: Promise<RawResponse>;
  /** Whether the response body has ended. */
  ended(): boolean;
  /** The body received so far. */
  received(): Buffer;
  /** Resolves once `check` holds for the body received so far (checked at once, then after each chunk). */
  until(check: (received: Buffer) => boolean): Promise<void>;
  /** Drops the connection, as a closed tab does. */
  abort(): void;
}

/**
 * Sends one HTTP/1.1 request to `baseUrl + path`. The body goes as the given
 * pieces, each written on its own (so the server sees several chunks).
 */
export function rawRequest(
  baseUrl: string,
  path: string,
  options: { method?: string; headers?: Record<string, string>; body?: (Buffer | string)[] },
): RawCall {
  const url = new URL(path, baseUrl);
  const listeners: (() => void)[] = [];
  let received = Buffer.alloc(0);
  let ended = false;
  const req = request(url, { method: options.method ?? "POST", headers: options.headers, agent: false });
  let resolveHeaders!: (value: { status: number; headers: IncomingHttpHeaders }) => void;
  const headers = new Promise<{ status: number; headers: IncomingHttpHeaders }>((resolve) => {
    resolveHeaders = resolve;
  });
  const done = new Promise<RawResponse>((resolve, reject) => {
    req.on("error", reject);
    req.on("response", (res) => {
      resolveHeaders({ status: res.statusCode ?? 0, headers: res.headers });
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => {
        chunks.push(chunk);
        received = Buffer.concat([received, chunk]);
        for (const listener of [...listeners]) listener();
      });
      res.on("end", () => {
        ended = true;
        for (const listener of [...listeners]) listener();
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, chunks, body: Buffer.concat(chunks) }));
      res.on("error", reject);
    });
  });
  done.catch(() => undefined);
  void (async () => {
    for (const piece of options.body ?? []) {
      req.write(piece);
      // Let the piece leave in its own TCP write.
      await new Promise((resolve) => setImmediate(resolve));
    }
    req.end();
  })();
  return {
    headers,
    done,
    ended: () => ended,
    received: () => received,
    until: (check) =>
      new Promise<void>((resolve) => {
        const listener = () => {
          if (!check(received)) return;
          listeners.splice(listeners.indexOf(listener), 1);
          resolve();
        };
        listeners.push(listener);
        listener();
      }),
    abort: () => req.destroy(),
  };
}

/** Headers of a binary gRPC-web call, as connect-web sends them. */
export function grpcWebHeaders(extra: Record<string, string> = {}): Record<string, string> {
  return { "content-type": "application/grpc-web+proto", "x-grpc-web": "1", ...extra };
}
