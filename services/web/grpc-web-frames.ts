// The gRPC-web wire format, as the gateway needs it: which content types are
// gRPC-web, the text mode's base64 (decoded as it arrives, 4 characters at a
// time), the length-prefixed frames and the trailers frame.
// Source: grpc/grpc doc/PROTOCOL-WEB.md, and what Envoy's grpc_web filter does
// with it (envoy/envoy.yaml runs that filter in Kubernetes).

/** The request content types Envoy's grpc_web filter accepts, exactly (no parameters). */
const GRPC_WEB_TYPES = new Set(["application/grpc-web", "application/grpc-web+proto"]);
const GRPC_WEB_TEXT_TYPES = new Set(["application/grpc-web-text", "application/grpc-web-text+proto"]);

/** The response content type: the filter always answers `+proto`, in the mode the `accept` header asks for. */
export const RESPONSE_TYPE = { binary: "application/grpc-web+proto", text: "application/grpc-web-text+proto" } as const;

/** "binary" or "text" for a gRPC-web content type (compared case-insensitively), else undefined. */
export function grpcWebMode(contentType: string | undefined): "binary" | "text" | undefined {
  const value = contentType?.trim().toLowerCase() ?? "";
  if (GRPC_WEB_TYPES.has(value)) return "binary";
  if (GRPC_WEB_TEXT_TYPES.has(value)) return "text";
  return undefined;
}

/** The request body is not valid base64 (text mode); Envoy answers this with the same message. */
class BadBase64Error extends Error {
  override name = "BadBase64Error";
  constructor() {
    super("Bad gRPC-web request, invalid base64 data.");
  }
}

const SEGMENT = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Decodes a text-mode body chunk by chunk. Complete groups of 4 characters
 * are decoded as soon as they arrive (the rest, at most 3, waits for the next
 * chunk), as Envoy's filter does. A padded group may end a segment in the
 * middle of the body (a client that encodes each write on its own), and more
 * base64 may follow it. `push` and `end` throw BadBase64Error.
 */
export class Base64Decoder {
  private rest = "";

  push(chunk: string): Buffer {
    const text = this.rest + chunk;
    const usable = text.length - (text.length % 4);
    this.rest = text.slice(usable);
    return decodeSegments(text.slice(0, usable));
  }

  /** The body ended: anything left over is not a whole group. */
  end(): void {
    if (this.rest.length > 0) throw new BadBase64Error();
  }
}

function decodeSegments(text: string): Buffer {
  const parts: Buffer[] = [];
  let start = 0;
  for (let i = 0; i < text.length; i += 4) {
    const last = i + 4 === text.length;
    if (!last && text[i + 3] !== "=") continue;
    const segment = text.slice(start, i + 4);
    if (!SEGMENT.test(segment)) throw new BadBase64Error();
    parts.push(Buffer.from(segment, "base64"));
    start = i + 4;
  }
  return Buffer.concat(parts);
}

/** The 5-byte header of every frame: a flag byte, then the length (big-endian uint32). */
const HEADER_BYTES = 5;
/** The flag of the trailers frame (MSB set, uncompressed). */
const TRAILERS_FLAG = 0x80;

/** The largest frame the gateway passes on (bytes of payload): grpc-js's default maximum message, 4 MiB. */
const MAX_FRAME_BYTES = 4 * 1024 * 1024;

/** A frame header declared more than MAX_FRAME_BYTES: it is refused before its bytes are kept. */
export class FrameTooLargeError extends Error {
  constructor(readonly declared: number) {
    super(`a gRPC-web frame of ${declared} bytes is over the ${MAX_FRAME_BYTES}-byte limit`);
    this.name = "FrameTooLargeError";
  }
}

/**
 * Splits a byte stream into whole frames (header included), whatever the
 * chunking: `push` returns the frames completed by a chunk and keeps the rest
 * (at most one frame, so at most MAX_FRAME_BYTES). Throws FrameTooLargeError
 * for a larger declared frame. `partial` tells whether the stream stopped
 * inside a frame (a truncated body).
 */
export class FrameSplitter {
  private pending: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): Buffer[] {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const frames: Buffer[] = [];
    while (this.pending.length >= HEADER_BYTES) {
      const declared = this.pending.readUInt32BE(1);
      if (declared > MAX_FRAME_BYTES) throw new FrameTooLargeError(declared);
      const size = HEADER_BYTES + declared;
      if (this.pending.length < size) break;
      frames.push(this.pending.subarray(0, size));
      this.pending = this.pending.subarray(size);
    }
    return frames;
  }

  get partial(): boolean {
    return this.pending.length > 0;
  }
}

/**
 * The trailers frame: flag 0x80, then the trailers as an HTTP/1 header block
 * without the final blank line, one `name:value\r\n` per value with the name
 * in lower case (Envoy writes no space after the colon; PROTOCOL-WEB allows
 * either). Values are sent as they are: the upstream already percent-encoded
 * `grpc-message`.
 */
export function trailersFrame(trailers: Record<string, string | string[] | undefined>): Buffer {
  let block = "";
  for (const [name, value] of Object.entries(trailers)) {
    if (value === undefined || name.startsWith(":")) continue;
    for (const one of Array.isArray(value) ? value : [value]) block += `${name.toLowerCase()}:${one}\r\n`;
  }
  const body = Buffer.from(block, "latin1");
  const header = Buffer.alloc(HEADER_BYTES);
  header.writeUInt8(TRAILERS_FLAG, 0);
  header.writeUInt32BE(body.length, 1);
  return Buffer.concat([header, body]);
}

/** Percent-encodes a `grpc-message` value as gRPC over HTTP/2 specifies (PROTOCOL-HTTP2.md). */
export function encodeGrpcMessage(message: string): string {
  return Array.from(Buffer.from(message, "utf8"), (byte) =>
    byte >= 0x20 && byte <= 0x7e && byte !== 0x25 ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`,
  ).join("");
}
