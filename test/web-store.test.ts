// The browser app's store alone (services/web/app/store.ts): which seq a
// resuming Subscribe asks to continue from. It runs in Node: the store is
// plain TypeScript over the generated protobuf-es types.
import { create } from "@bufbuild/protobuf";
import test from "ava";
import { type Message, MessageSchema } from "../gen/es/parley/chat/v1/chat_pb.js";
import { ChatStore } from "../services/web/app/store.js";

const dm = "dm:1:2";
const message = (seq: number, sender: string, clientMsgId = `c${seq}`): Message =>
  create(MessageSchema, {
    id: String(seq),
    conversationId: dm,
    seq: BigInt(seq),
    sender,
    to: { kind: { case: "username", value: sender === "ana" ? "ben" : "ana" } },
    body: `m${seq}`,
    clientMsgId,
  });

test("the cursor is the last seq the stream delivered: an ack or the inbox knowing a later seq does not move it", (t) => {
  const store = new ChatStore("ana");
  for (const seq of [1, 2]) {
    const m = message(seq, "ben");
    store.addMessage(m, true);
    store.delivered(m);
  }
  t.deepEqual(store.cursors(), [{ conversationId: dm, seq: 2n }]);
  // Ben's seq 3 commits while ana's stream is down; ana's own send is acknowledged as seq 4.
  store.addMessage(message(4, "ana"), true);
  t.deepEqual(store.cursors(), [{ conversationId: dm, seq: 2n }], "resuming from 4 would skip ben's 3");
  // The stream resumes from 2 and delivers 3 and 4; 4 is shown once.
  for (const seq of [3, 4]) {
    const m = message(seq, seq === 3 ? "ben" : "ana");
    store.addMessage(m, true);
    store.delivered(m);
  }
  t.deepEqual(store.cursors(), [{ conversationId: dm, seq: 4n }]);
  const chat = [...store.chats.values()][0];
  t.deepEqual(
    chat.messages.map((m) => Number(m.seq)),
    [1, 2, 3, 4],
  );
});

test("a conversation the stream never delivered has no cursor, so the server replays it from the read cursor", (t) => {
  const store = new ChatStore("ana");
  store.addMessage(message(7, "ana"), true);
  t.deepEqual(store.cursors(), []);
});
