import test from "ava";
import { GetMetricsRequest, ExternalScalerService } from "../../gen/externalscaler/externalscaler.js";
import { LogInRequest, AuthServiceService } from "../../gen/parley/auth/v1/auth.js";
import { ChatServiceService, ClientFrame, GetHistoryRequest, SendRequest, SubscribeRequest } from "../../gen/parley/chat/v1/chat.js";
import { isMalformed, tolerantRequests, type Malformed } from "./grpc-calls.js";

const chat = tolerantRequests(ChatServiceService, { domainCheckedText: ["parley.chat.v1.SendRequest.body"] });
const auth = tolerantRequests(AuthServiceService);
const scaler = tolerantRequests(ExternalScalerService);

const malformed = (value: unknown): Malformed => {
  if (!isMalformed(value)) throw new Error(`decoded without complaint: ${JSON.stringify(value)}`);
  return value;
};
const bytes = (u: Uint8Array) => Buffer.from(u);

test("U+0000 in any string field is refused, named as the .proto names it", (t) => {
  const cases: [unknown, string][] = [
    [auth.logIn.requestDeserialize(bytes(LogInRequest.encode({ username: "ana\u0000", password: "x" }).finish())), "username"],
    [
      chat.getHistory.requestDeserialize(bytes(GetHistoryRequest.encode({ conversationId: "x\u0000", beforeSeq: 0, limit: 0 }).finish())),
      "conversation_id",
    ],
    [chat.send.requestDeserialize(bytes(SendRequest.encode({ clientMsgId: "n-1", to: { group: "\u0000" }, body: "hi" }).finish())), "to.group"],
    [
      chat.subscribe.requestDeserialize(
        bytes(
          SubscribeRequest.encode(
            SubscribeRequest.fromPartial({
              cursors: [
                { conversationId: "ok", seq: 1 },
                { conversationId: "\u0000", seq: 1 },
              ],
            }),
          ).finish(),
        ),
      ),
      "cursors.conversation_id",
    ],
    [chat.connect.requestDeserialize(bytes(ClientFrame.encode({ ping: { nonce: "\u0000" } }).finish())), "ping.nonce"],
    [
      scaler.getMetrics.requestDeserialize(bytes(GetMetricsRequest.encode({ metricName: "m\u0000", scaledObjectRef: undefined }).finish())),
      "metricName",
    ],
    [
      scaler.getMetrics.requestDeserialize(
        bytes(
          GetMetricsRequest.encode({
            metricName: "",
            scaledObjectRef: { name: "a", namespace: "b", scalerMetadata: { usersPerReplica: "3\u0000" } },
          }).finish(),
        ),
      ),
      "scaledObjectRef.scalerMetadata",
    ],
  ];
  for (const [decoded, field] of cases) {
    const m = malformed(decoded);
    t.is(m.field, field);
    t.is(m.malformed, `${field} must not contain U+0000`);
  }
});

test("a send's body is left to the domain, and a refused send frame keeps its clean client_msg_id", (t) => {
  const body = SendRequest.encode({ clientMsgId: "n-1", to: { username: "ben" }, body: "a\u0000b" }).finish();
  t.is((chat.send.requestDeserialize(bytes(body)) as SendRequest).body, "a\u0000b");
  const frame = ClientFrame.encode({ send: { clientMsgId: "n-2", to: { username: "be\u0000n" }, body: "hi" } }).finish();
  t.like(malformed(chat.connect.requestDeserialize(bytes(frame))), { field: "send.to.username", clientMsgId: "n-2" });
  const dirtyId = ClientFrame.encode({ send: { clientMsgId: "n\u00003", to: { username: "ben" }, body: "hi" } }).finish();
  t.like(malformed(chat.connect.requestDeserialize(bytes(dirtyId))), { field: "send.client_msg_id", clientMsgId: undefined });
});

test("an int64 beyond 2^53 is refused naming its field; in range, negative or not, it decodes", (t) => {
  // before_seq = 2^60 and seq = -(2^60), written by hand: ts-proto's encoder would refuse them too.
  const huge = Buffer.from([0x0a, 0x01, 0x78, 0x10, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10]);
  t.like(malformed(chat.getHistory.requestDeserialize(huge)), { field: "before_seq" });
  const fine = chat.getHistory.requestDeserialize(bytes(GetHistoryRequest.encode({ conversationId: "x", beforeSeq: -5, limit: -1 }).finish()));
  t.like(fine as GetHistoryRequest, { beforeSeq: -5, limit: -1 });
});

test("text the store can keep passes untouched: emoji, RTL marks, replacement characters, 4096 bytes of multi-byte text", (t) => {
  for (const text of ["😀👩‍👩‍👧", "\u202Eabc\u200F", "\ufffd", "é".repeat(2048)]) {
    const frame = ClientFrame.encode({ send: { clientMsgId: text, to: { group: text }, body: text } }).finish();
    const decoded = chat.connect.requestDeserialize(bytes(frame)) as ClientFrame;
    t.deepEqual([decoded.send?.clientMsgId, decoded.send?.to?.group, decoded.send?.body], [text, text, text]);
  }
});

test("bytes that do not decode become Malformed, not an exception", (t) => {
  t.false(malformed(chat.send.requestDeserialize(Buffer.from([0xff, 0xff, 0xff]))).malformed === "");
});
