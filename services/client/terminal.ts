// The terminal client: `npm run chat -- --server localhost:50051`. Logs in
// (from flags, or by asking), then runs sessions until /quit, bye, or the end
// of input. /logout and a refused session go back to the login questions.
import { parseArgs } from "node:util";
import type { User } from "../../gen/parley/auth/v1/auth.js";
import { ParleyApi } from "./api.js";
import { formatError } from "./terminal-format.js";
import { TerminalIo } from "./terminal-io.js";
import { askAndAuthenticate, authenticate } from "./terminal-login.js";
import { TerminalSession } from "./terminal-session.js";

const USAGE = `usage: npm run chat -- [--server host:port] [--user name [--password secret] [--signup]]

  --server    the Parley (or Envoy) address; default localhost:50051
  --user      log in as this user; without --password, the password is asked
  --password  log in without being asked (visible to other local users in ps)
  --signup    create the account named by --user/--password instead of logging in

Without --user, the client asks whether to log in or sign up. Type /help once in.`;

interface TerminalArgs {
  server: string;
  user?: string;
  password?: string;
  signUp: boolean;
}

/** The command line, checked; exits with the usage on a mistake. */
function readArgs(argv: string[]): TerminalArgs {
  try {
    const { values } = parseArgs({
      args: argv,
      options: {
        server: { type: "string", default: "localhost:50051" },
        user: { type: "string" },
        password: { type: "string" },
        signup: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
      strict: true,
      allowPositionals: false,
    });
    if (values.help) {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    }
    if ((values.password !== undefined || values.signup) && values.user === undefined) {
      throw new Error("--password and --signup need --user");
    }
    return { server: values.server as string, user: values.user, password: values.password, signUp: values.signup === true };
  } catch (err) {
    process.stderr.write(`parley chat: ${err instanceof Error ? err.message : String(err)}\n${USAGE}\n`);
    process.exit(2);
  }
}

/** Credentials from flags are tried once: a script should fail loudly rather than hang on a question. */
async function firstLogin(io: TerminalIo, api: ParleyApi, args: TerminalArgs): Promise<User | undefined> {
  if (args.user === undefined || args.password === undefined) {
    return askAndAuthenticate(io, api, args.user === undefined ? undefined : { username: args.user, signUp: args.signUp });
  }
  try {
    const user = await authenticate(api, { username: args.user, password: args.password, signUp: args.signUp });
    io.print(`* ${args.signUp ? "signed up" : "logged in"} as ${user.username}`);
    return user;
  } catch (err) {
    io.print(`! ${args.signUp ? "sign-up" : "login"} failed: ${formatError(err)}`);
    return undefined;
  }
}

async function main(): Promise<number> {
  const args = readArgs(process.argv.slice(2));
  const io = new TerminalIo();
  const api = new ParleyApi(args.server);
  io.print(`Parley on ${args.server}`);
  let user = await firstLogin(io, api, args);
  while (user !== undefined) {
    const outcome = await new TerminalSession(io, api, user).run();
    if (outcome === "quit") {
      io.close();
      io.print("bye");
      api.close();
      return 0;
    }
    user = await askAndAuthenticate(io, api);
  }
  io.close();
  api.close();
  return 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`parley chat: ${formatError(err)}\n`);
    process.exit(1);
  },
);
