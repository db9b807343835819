import type { User } from "../../gen/parley/auth/v1/auth.js";
import type { ParleyApi } from "./api.js";
import { formatError } from "./terminal-format.js";
import type { TerminalIo } from "./terminal-io.js";

/** What a login needs, from flags or from the questions. */
export interface Credentials {
  username: string;
  password: string;
  /** Create the account instead of logging in to it. */
  signUp: boolean;
}

/** Logs in or signs up; on success `api` carries the new token. */
export async function authenticate(api: ParleyApi, credentials: Credentials): Promise<User> {
  const grant = credentials.signUp
    ? await api.signUp(credentials.username, credentials.password)
    : await api.logIn(credentials.username, credentials.password);
  if (grant.user === undefined) throw new Error("the server sent no user");
  return grant.user;
}

/**
 * Asks "(l)og in or (s)ign up?", a username and a password (hidden on a TTY),
 * and tries them, again and again until one works. A `preset` (from flags)
 * skips the first two questions the first time round. Resolves undefined
 * when input ends.
 */
export async function askAndAuthenticate(io: TerminalIo, api: ParleyApi, preset?: { username: string; signUp: boolean }): Promise<User | undefined> {
  let given = preset;
  for (;;) {
    const credentials = await askCredentials(io, given);
    if (credentials === undefined) return undefined;
    given = undefined;
    try {
      const user = await authenticate(api, credentials);
      io.print(`* ${credentials.signUp ? "signed up" : "logged in"} as ${user.username}`);
      return user;
    } catch (err) {
      io.print(`! ${credentials.signUp ? "sign-up" : "login"} failed: ${formatError(err)}`);
    }
  }
}

async function askCredentials(io: TerminalIo, preset?: { username: string; signUp: boolean }): Promise<Credentials | undefined> {
  let signUp = preset?.signUp ?? false;
  if (preset === undefined) {
    const choice = await askChoice(io);
    if (choice === undefined) return undefined;
    signUp = choice === "s";
  }
  let username = preset?.username;
  while (username === undefined || username === "") {
    username = (await io.ask("username: "))?.trim();
    if (username === undefined) return undefined;
  }
  const password = await io.ask("password: ", { hidden: true });
  if (password === undefined) return undefined;
  return { username, password, signUp };
}

async function askChoice(io: TerminalIo): Promise<"l" | "s" | undefined> {
  for (;;) {
    const answer = await io.ask("(l)og in or (s)ign up? ");
    if (answer === undefined) return undefined;
    const word = answer.trim().toLowerCase();
    if (["l", "login", "log in"].includes(word)) return "l";
    if (["s", "signup", "sign up"].includes(word)) return "s";
    io.print("! answer l to log in or s to sign up");
  }
}
