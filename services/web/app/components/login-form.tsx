// Log in or sign up. A failure shows the server's own message (e.g. a wrong
// password's UNAUTHENTICATED text, a taken name's ALREADY_EXISTS text).
import { useMemo, useState } from "preact/hooks";
import { createApi, errorText } from "../api.js";
import type { Session } from "../session.js";

export function LoginForm(props: { notice?: string; onSession: (session: Session) => void }) {
  const api = useMemo(() => createApi(() => undefined), []);
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string | undefined>(props.notice);
  const [busy, setBusy] = useState(false);

  async function submit(mode: "logIn" | "signUp") {
    setBusy(true);
    setError(undefined);
    try {
      const grant = mode === "logIn" ? await api.auth.logIn({ username, password }) : await api.auth.signUp({ username, password });
      props.onSession({ token: grant.token, username: grant.user?.username ?? username });
    } catch (err) {
      setError(errorText(err));
      setBusy(false);
    }
  }

  return (
    <main class="login">
      <form
        class="card"
        onSubmit={(e) => {
          e.preventDefault();
          void submit("logIn");
        }}
      >
        <h1>Parley</h1>
        <label>
          Username
          <input name="username" autoComplete="username" required value={username} onInput={(e) => setUsername(e.currentTarget.value)} />
        </label>
        <label>
          Password
          <input
            name="password"
            type="password"
            autoComplete="current-password"
            required
            value={password}
            onInput={(e) => setPassword(e.currentTarget.value)}
          />
        </label>
        <div class="row">
          <button type="submit" disabled={busy}>
            Log in
          </button>
          <button type="button" class="secondary" disabled={busy} onClick={() => void submit("signUp")}>
            Sign up
          </button>
        </div>
        {error && (
          <p role="alert" class="error">
            {error}
          </p>
        )}
      </form>
    </main>
  );
}
