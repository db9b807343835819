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

test("the newest history page is gapless up to its top: it becomes the cursor, so a resume after it misses nothing", (t) => {
  const store = new ChatStore("ana");
  const first = message(11, "ben");
  store.addMessage(first, true);
  const key = [...store.chats.keys()][0];
  store.addHistory(key, [message(9, "ben"), message(10, "ana"), first], true, true);
  t.deepEqual(store.cursors(), [{ conversationId: dm, seq: 11n }]);
  // An older page (paging back) says nothing about what is newer.
  store.addHistory(key, [message(7, "ben"), message(8, "ben")], false);
  t.deepEqual(store.cursors(), [{ conversationId: dm, seq: 11n }]);
  // Ana's own send acknowledged as 13 while ben's 12 is on its way: the cursor stays.
  store.addMessage(message(13, "ana"), true);
  t.deepEqual(store.cursors(), [{ conversationId: dm, seq: 11n }]);
});
