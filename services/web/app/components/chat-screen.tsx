// The signed-in page: header (who, `Connection`, `Log out`), the sidebar
// (inbox, groups, online) and the open chat. It owns the session's one live
// subscription and aborts it (and every pending send) at log-out.
import { useEffect, useMemo, useState } from "preact/hooks";
import { createApi, errorText, isUnauthenticated } from "../api.js";
import { ChatActions } from "../chat-actions.js";
import { BROADCAST_KEY, type ChatKey, dmKey, kindOf } from "../chat-keys.js";
import { runLiveSubscription } from "../live-subscription.js";
import { Outbox } from "../outbox.js";
import type { Session } from "../session.js";
import { ChatStore } from "../store.js";
import { useStore } from "../use-store.js";
import { ChatView, useExpiry } from "./chat-view.js";
import { ConnectionStatus } from "./connection-status.js";
import { ConversationList } from "./conversation-list.js";
import { GroupsPanel, OnlineList } from "./side-lists.js";

/** Who is online is asked again this often (ms), besides the presence frames. */
const ONLINE_REFRESH_MS = 15_000;

const OPEN_KEY = "parley.open";

export function ChatScreen(props: { session: Session; onLoggedOut: (notice?: string) => void }) {
  const { session } = props;
  const ctx = useMemo(() => {
    const controller = new AbortController();
    const api = createApi(() => session.token);
    const store = new ChatStore(session.username);
    store.chat(BROADCAST_KEY, "broadcast");
    return { controller, api, store, actions: new ChatActions(api, store), outbox: new Outbox(api, store, controller.signal) };
  }, [session.token, session.username]);
  const { store, actions } = ctx;
  const [error, setError] = useState<string | undefined>();
  useStore(store);

  const report = (err: unknown) => {
    if (isUnauthenticated(err)) props.onLoggedOut("Your session has ended. Log in again.");
    else setError(errorText(err));
  };

  const open = (key: ChatKey, title: string) => {
    localStorage.setItem(OPEN_KEY, JSON.stringify({ user: session.username, key, title }));
    actions.open(key, title).catch(report);
  };

  useEffect(() => {
    const { signal } = ctx.controller;
    const refresh = () => {
      actions.refreshInbox().catch(report);
      actions.refreshOnline().catch(report);
    };
    const reopen = () => {
      let saved: { user: string; key: string; title: string } | null = null;
      try {
        saved = JSON.parse(localStorage.getItem(OPEN_KEY) ?? "null");
      } catch {
        localStorage.removeItem(OPEN_KEY); // written by another version: forget it
      }
      if (saved?.user === session.username) actions.open(saved.key, saved.title).catch(report);
    };
    // Presence frames reach only users who share a conversation: someone met since the last refresh
    // (a new DM) shows up at the next one. The first Subscribe has no cursors and replays from the read cursors.
    const onlineTimer = setInterval(() => actions.refreshOnline().catch(() => undefined), ONLINE_REFRESH_MS);
    // What the page typed before a reload and never saw acknowledged goes out again, with the same ids.
    ctx.outbox.resume();
    actions
      .refreshInbox()
      .catch(() => undefined)
      .then(reopen)
      .then(() =>
        runLiveSubscription(
          ctx.api,
          store,
          { onReady: refresh, onUnauthenticated: () => props.onLoggedOut("Your session has ended. Log in again.") },
          signal,
        ),
      );
    const onVisible = () => store.selected && actions.markRead(store.selected).catch(report);
    document.addEventListener("visibilitychange", onVisible);
    return () => {
      document.removeEventListener("visibilitychange", onVisible);
      clearInterval(onlineTimer);
      ctx.controller.abort();
    };
  }, [ctx]);

  const chat = store.selected ? store.chats.get(store.selected) : undefined;
  const typing = chat ? store.typing.get(chat.key) : undefined;
  const shownTyping = typing && typing.until > Date.now() ? typing : undefined;
  useExpiry(shownTyping?.until);
  useEffect(() => {
    if (chat) actions.markRead(chat.key).catch(report);
  }, [chat?.key, chat?.lastSeq, chat?.streamSeq]);

  const logOut = async () => {
    await ctx.api.auth.logOut({}).catch(() => undefined);
    localStorage.removeItem(OPEN_KEY);
    props.onLoggedOut();
  };

  return (
    <div class="shell">
      <header class="top">
        <h1>Parley</h1>
        <ConnectionStatus state={store.connection} />
        <a class="nav" href="/ops">
          Operations
        </a>
        <span class="me">{session.username}</span>
        <button type="button" class="secondary" onClick={() => void logOut()}>
          Log out
        </button>
      </header>
      {error && (
        <p role="alert" class="error banner" onClick={() => setError(undefined)} onKeyDown={() => setError(undefined)}>
          {error}
        </p>
      )}
      <aside class="side">
        <ConversationList
          chats={store.inbox()}
          selected={store.selected}
          onOpen={(c) => open(c.key, c.title)}
          onStart={(peer) => open(dmKey(peer), peer)}
        />
        <GroupsPanel
          find={(q) => actions.listGroups(q)}
          onCreate={(name) => actions.createGroup(name)}
          onJoin={(name) => actions.joinGroup(name)}
          onLeave={(name) => actions.leaveGroup(name)}
          onError={report}
        />
        <OnlineList me={session.username} online={store.online} onOpen={(u) => open(dmKey(u), u)} />
      </aside>
      {chat ? (
        <ChatView
          key={chat.key}
          chat={chat}
          me={session.username}
          typing={shownTyping}
          onSend={(body) => void ctx.outbox.send(chat.key, chat.title, body)}
          onTyping={() => actions.typing(chat.key, chat.title)}
          onLoadOlder={() => actions.loadOlder(chat.key).catch(report)}
          onLeave={kindOf(chat.key) === "group" ? () => actions.leaveGroup(chat.title).catch(report) : undefined}
        />
      ) : (
        <section class="chat empty">
          <p>Pick a conversation, or start one with a username.</p>
        </section>
      )}
    </div>
  );
}
