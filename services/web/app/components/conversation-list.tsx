// The inbox: the `Conversations` list, newest activity first, each item named
// by its conversation and showing its unread count; and a way to start a DM.
import { useState } from "preact/hooks";
import type { Chat } from "../store.js";

export function ConversationList(props: { chats: Chat[]; selected?: string; onOpen: (chat: Chat) => void; onStart: (peer: string) => void }) {
  const [peer, setPeer] = useState("");
  return (
    <section class="panel">
      <h2>Chats</h2>
      <ul aria-label="Conversations" class="conversations">
        {props.chats.map((chat) => (
          <li key={chat.key}>
            <button type="button" aria-current={chat.key === props.selected ? "true" : undefined} onClick={() => props.onOpen(chat)}>
              <span class="icon" aria-hidden="true">
                {chat.kind === "group" ? "#" : chat.kind === "broadcast" ? "*" : "@"}
              </span>
              <span class="title">{chat.title}</span>
              {chat.unread > 0 && (
                <span class="badge">
                  {chat.unread}
                  <span class="sr"> unread</span>
                </span>
              )}
            </button>
          </li>
        ))}
      </ul>
      <form
        class="row"
        onSubmit={(e) => {
          e.preventDefault();
          if (peer.trim()) props.onStart(peer.trim());
          setPeer("");
        }}
      >
        <input aria-label="New chat with" placeholder="username" value={peer} onInput={(e) => setPeer(e.currentTarget.value)} />
        <button type="submit">Chat</button>
      </form>
    </section>
  );
}
