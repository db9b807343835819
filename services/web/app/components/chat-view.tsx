// One conversation: the `Messages` list (pages back as you scroll to its top,
// keeps the bottom in view as messages arrive), who is typing, and the
// composer (`Message`, `Send`), which sends typing hints while you type.
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import type { Message } from "../../../../gen/es/parley/chat/v1/chat_pb.js";
import type { Chat } from "../store.js";

/** Within this many pixels of the top, the next older page loads. */
const NEAR_TOP_PX = 48;

export interface ChatViewProps {
  chat: Chat;
  me: string;
  typing?: { from: string; until: number };
  onSend: (body: string) => void;
  onTyping: () => void;
  onLoadOlder: () => void;
  onLeave?: () => void;
}

export function ChatView(props: ChatViewProps) {
  const { chat } = props;
  const list = useRef<HTMLOListElement>(null);
  const [draft, setDraft] = useState("");
  const shape = useRef({ first: undefined as bigint | undefined, height: 0, atBottom: true });

  // Keep the reader's place: after older messages are prepended, hold the old
  // top in view; when new ones arrive and the reader was at the bottom, follow.
  useLayoutEffect(() => {
    const el = list.current;
    if (!el) return;
    const first = chat.messages[0]?.seq;
    const prepended = shape.current.first !== undefined && first !== undefined && first < shape.current.first;
    if (prepended) el.scrollTop += el.scrollHeight - shape.current.height;
    else if (shape.current.atBottom) el.scrollTop = el.scrollHeight;
    shape.current = { first, height: el.scrollHeight, atBottom: shape.current.atBottom };
    if (chat.historyLoaded && chat.hasMore && el.scrollHeight <= el.clientHeight) props.onLoadOlder();
  });

  const onScroll = () => {
    const el = list.current;
    if (!el) return;
    shape.current.atBottom = el.scrollHeight - el.scrollTop - el.clientHeight < 24;
    if (el.scrollTop < NEAR_TOP_PX && chat.hasMore) props.onLoadOlder();
  };

  return (
    <section class="chat" aria-label={`Chat with ${chat.title}`}>
      <header class="chat-header">
        <h2>{chat.kind === "group" ? `# ${chat.title}` : chat.kind === "broadcast" ? "Broadcast to everyone" : chat.title}</h2>
        {props.onLeave && (
          <button type="button" class="secondary" onClick={props.onLeave}>
            Leave group
          </button>
        )}
      </header>
      <ol aria-label="Messages" class="messages" ref={list} onScroll={onScroll}>
        {chat.messages.map((m) => (
          <MessageItem key={String(m.seq)} message={m} mine={m.sender.toLowerCase() === props.me.toLowerCase()} />
        ))}
        {chat.pending.map((p) => (
          <li key={p.clientMsgId} class={`message mine ${p.error ? "failed" : "pending"}`} aria-busy={p.error ? undefined : "true"}>
            <span class="sender">{props.me}</span>
            <span class="body">{p.body}</span>
            <span class="meta">{p.error ? `Not sent: ${p.error}` : "Sending…"}</span>
          </li>
        ))}
      </ol>
      <p class="typing" aria-live="polite">
        {props.typing ? `${props.typing.from} is typing…` : ""}
      </p>
      <form
        class="composer"
        onSubmit={(e) => {
          e.preventDefault();
          const body = draft.trim();
          if (!body) return;
          shape.current.atBottom = true;
          props.onSend(body);
          setDraft("");
        }}
      >
        <input
          aria-label="Message"
          placeholder={`Message ${chat.title}`}
          autoComplete="off"
          value={draft}
          onInput={(e) => {
            setDraft(e.currentTarget.value);
            if (e.currentTarget.value) props.onTyping();
          }}
        />
        <button type="submit">Send</button>
      </form>
    </section>
  );
}

function MessageItem(props: { message: Message; mine: boolean }) {
  const { message } = props;
  const sent = message.sentAt ? timestampDate(message.sentAt) : undefined;
  return (
    <li class={`message${props.mine ? " mine" : ""}`}>
      <span class="sender">{message.sender}</span>
      <span class="body">{message.body}</span>
      {sent && (
        <time class="meta" dateTime={sent.toISOString()}>
          {sent.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}
        </time>
      )}
    </li>
  );
}

/** Re-renders once `until` (ms since epoch) has passed, so that a typing hint goes away on time. */
export function useExpiry(until: number | undefined): void {
  const [, setTick] = useState(0);
  useEffect(() => {
    if (until === undefined) return;
    const timer = setTimeout(() => setTick((t) => t + 1), Math.max(0, until - Date.now()) + 10);
    return () => clearTimeout(timer);
  }, [until]);
}
