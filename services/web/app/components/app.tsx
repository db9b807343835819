// The app's root: the log-in form, or the chat for the saved session.
import { useState } from "preact/hooks";
import { type Session, clearSession, loadSession, saveSession } from "../session.js";
import { ChatScreen } from "./chat-screen.js";
import { LoginForm } from "./login-form.js";

export function App() {
  const [session, setSession] = useState<Session | undefined>(() => loadSession());
  const [notice, setNotice] = useState<string | undefined>();
  if (!session) {
    return (
      <LoginForm
        notice={notice}
        onSession={(s) => {
          saveSession(s);
          setNotice(undefined);
          setSession(s);
        }}
      />
    );
  }
  return (
    <ChatScreen
      key={session.token}
      session={session}
      onLoggedOut={(message) => {
        clearSession();
        setNotice(message);
        setSession(undefined);
      }}
    />
  );
}
