// Starting on Postgres (services/db/client.ts, services/app.ts): pods that start
// together take turns under an advisory lock, and the wait, like a slow ALTER
// TABLE on a busy machine, is not cut short by the timeouts that bound a send's
// statements; and a start that fails partway closes what it had opened.
import { spawn } from "node:child_process";
import { type AddressInfo, createServer } from "node:net";
import { fileURLToPath } from "node:url";
import anyTest, { type TestFn } from "ava";
import pg from "pg";
import { pino } from "pino";
import { openDatabase } from "../services/db/client.js";
import { freshDatabase, freshRedis, scratchDir } from "./helpers/infra.js";

const test = anyTest as TestFn;
/** services/db/client.ts's MIGRATION_LOCK_KEY. */
const MIGRATION_LOCK_KEY = 727539;
const REPO_ROOT = fileURLToPath(new URL("..", import.meta.url));

test("a pod that waits for another's migrations longer than a statement may still migrates, and the tables are there once", async (t) => {
  const url = await freshDatabase();
  // Another pod, migrating: it holds the lock.
  const other = new pg.Client({ connectionString: url });
  await other.connect();
  t.teardown(() => other.end().catch(() => undefined));
  await other.query("SELECT pg_advisory_lock($1)", [MIGRATION_LOCK_KEY]);

  // 100 ms statements: the pool's client gives up on a query after 2.1 s.
  const database = await openDatabase({ databaseUrl: url, dataDir: scratchDir("migrate"), log: pino({ level: "silent" }), statementTimeoutMs: 100 });
  t.teardown(() => database.close());
  const migrating = database.migrate().then(
    () => "migrated",
    (err: Error) => `failed: ${err.message}`,
  );
  const held = await Promise.race([migrating, new Promise((resolve) => setTimeout(resolve, 2_600, "still waiting"))]);
  t.is(held, "still waiting", "it waits while the lock is held");
  await other.query("SELECT pg_advisory_unlock($1)", [MIGRATION_LOCK_KEY]);
  t.is(await migrating, "migrated");

  const tables = await other.query<{ name: string }>("SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' ORDER BY 1");
  t.true(
    ["users", "messages", "conversations"].every((name) => tables.rows.some((row) => row.name === name)),
    JSON.stringify(tables.rows),
  );
  // Applied once: a second run finds nothing to do.
  await database.migrate();
  const applied = await other.query<{ n: number }>("SELECT count(*)::int AS n FROM drizzle.__drizzle_migrations");
  const files = await other.query<{ n: number }>("SELECT count(DISTINCT hash)::int AS n FROM drizzle.__drizzle_migrations");
  t.is(applied.rows[0].n, files.rows[0].n);
  // The pool still bounds a send's statements.
  const slow = await database.prepared("slow", "SELECT pg_sleep(1)", []).then(
    () => "answered",
    (err: Error) => err.message,
  );
  t.regex(slow, /statement timeout/);
});

// ---------------------------------------------------------------------------
// A start that fails partway

/**
 * Starts Parley with `env` in a Node process of its own that does nothing else
 * (no process.exit, unlike services/main.ts) and resolves with what it printed
 * and its exit code, or "still running" when it has not exited by itself within
 * 20 s: then something the failed start opened keeps it alive.
 */
function startAlone(env: Record<string, string>): Promise<{ output: string; exit: number | string }> {
  const script = [
    'import { pino } from "pino";',
    'import { startParley } from "./services/app.ts";',
    'import { loadConfig } from "./services/lib/config.ts";',
    "const config = loadConfig(process.env);",
    'startParley(config, pino({ level: "silent" })).then(',
    '  () => console.log("started"),',
    '  (err) => console.log("failed:", err.message),',
    ");",
  ].join("\n");
  const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
    cwd: REPO_ROOT,
    env: { ...process.env, WEB_PORT: "off", METRICS_PORT: "0", POD_NAME: "failed-start", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      resolve({ output, exit: "still running" });
    }, 20_000);
    child.once("exit", (code) => {
      clearTimeout(timer);
      resolve({ output, exit: code ?? "killed" });
    });
  });
}

test("a start whose migrations fail closes the database: the process has nothing left to wait for", async (t) => {
  const url = await freshDatabase();
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  // What the first migration creates, already there and different.
  await client.query("CREATE TABLE users (whatever int)");
  await client.end();
  const { output, exit } = await startAlone({ DATABASE_URL: url });
  t.regex(output, /failed: Failed query:\s+CREATE TABLE "users"/, output);
  t.is(exit, 0, output);
});

test("a start whose gRPC port is taken closes the database, Redis and presence: the process has nothing left to wait for", async (t) => {
  const taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, "0.0.0.0", resolve));
  t.teardown(() => new Promise<void>((resolve) => taken.close(() => resolve())));
  const redis = await freshRedis();
  t.teardown(() => redis.stop());
  const port = (taken.address() as AddressInfo).port;
  const { output, exit } = await startAlone({ DATABASE_URL: await freshDatabase(), REDIS_URL: redis.url, GRPC_PORT: String(port) });
  t.regex(output, /failed: .*(EADDRINUSE|address)/i, output);
  t.is(exit, 0, output);
});
