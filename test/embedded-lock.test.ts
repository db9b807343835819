// One process owns an embedded data folder (design.md, PARLEY_DATA_DIR): a
// second `npm start` on it is refused before it touches anything, with a
// message naming the folder, and a restart after a SIGKILL works at once.
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import anyTest, { type TestFn } from "ava";
import { newUser } from "./helpers/clients.js";
import { scratchDir } from "./helpers/infra.js";
import { spawnServer, type ChildServer, type Env } from "./helpers/servers.js";

const test = anyTest as TestFn<{ servers: ChildServer[] }>;

test.before((t) => {
  t.context.servers = [];
});
test.after.always(async (t) => {
  for (const server of t.context.servers) {
    server.kill("SIGKILL");
    await server.exited;
  }
});

/** Every file and folder under `dir`: its mtime, size and (for files) content hash. */
function snapshot(dir: string): Record<string, string> {
  const entries: Record<string, string> = {};
  for (const name of readdirSync(dir, { recursive: true }) as string[]) {
    const path = join(dir, name);
    const stat = statSync(path);
    const hash = stat.isFile() ? createHash("sha256").update(readFileSync(path)).digest("hex") : "dir";
    entries[name] = `${stat.mtimeMs} ${stat.size} ${hash}`;
  }
  entries["."] = String(statSync(dir).mtimeMs);
  return entries;
}

test("a second process on a live PARLEY_DATA_DIR exits non-zero naming the folder and changes nothing; after SIGKILL a restart works at once", async (t) => {
  const dir = scratchDir("owned");
  const env: Env = { DATABASE_URL: undefined, REDIS_URL: undefined, PARLEY_DATA_DIR: dir };
  const start = async () => {
    const server = await spawnServer(env);
    t.context.servers.push(server);
    return server;
  };

  const first = await start();
  const user = await newUser(first.address);
  const sent = await user.api.send({ broadcast: true }, "kept", "lock-1");
  const before = snapshot(dir);
  t.true(Object.keys(before).length > 50, `${Object.keys(before).length} entries in the folder`);

  const refusal = await spawnServer(env).then(
    (server) => {
      t.context.servers.push(server);
      return undefined;
    },
    (err: Error) => err.message,
  );
  t.truthy(refusal, "the second process served");
  const code = Number(/server exited \((-?\d+|null)\)/.exec(refusal ?? "")?.[1]);
  t.true(Number.isInteger(code) && code !== 0, `exit code ${code}`);
  t.true(refusal?.includes(dir), "the message names the folder");
  t.deepEqual(snapshot(dir), before, "the second process changed the folder");

  // The first one never noticed.
  t.is((await user.api.getHistory("broadcast")).messages.at(-1)?.id, sent.id);
  user.api.close();

  first.kill("SIGKILL");
  await first.exited;
  const restartedAt = Date.now();
  const restarted = await start();
  const restartMs = Date.now() - restartedAt;
  t.log(`restart after SIGKILL listened in ${restartMs} ms`);
  const again = await newUser(restarted.address);
  t.is((await again.api.getHistory("broadcast")).messages.at(-1)?.body, "kept");
  again.api.close();
});
