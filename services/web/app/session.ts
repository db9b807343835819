// The signed-in user, kept in localStorage so that a reload stays signed in.

/** What a log-in grants: the opaque bearer token and whose it is. */
export interface Session {
  token: string;
  username: string;
}

const KEY = "parley.session";

/** The saved session, or undefined when there is none or it is unreadable (then it is removed). */
export function loadSession(storage: Storage = localStorage): Session | undefined {
  const raw = storage.getItem(KEY);
  if (!raw) return undefined;
  try {
    const parsed = JSON.parse(raw) as Partial<Session>;
    if (typeof parsed.token === "string" && typeof parsed.username === "string") return { token: parsed.token, username: parsed.username };
  } catch {
    // fall through: a corrupt entry is dropped
  }
  storage.removeItem(KEY);
  return undefined;
}

export function saveSession(session: Session, storage: Storage = localStorage): void {
  storage.setItem(KEY, JSON.stringify(session));
}

export function clearSession(storage: Storage = localStorage): void {
  storage.removeItem(KEY);
}
