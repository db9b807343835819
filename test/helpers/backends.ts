// The backends a shared suite runs on (conventions.md, habit 15): the embedded
// mode (PGlite, memory bus, presence, session cache and rate limit: `npm start`
// with no DATABASE_URL and no REDIS_URL) and the cluster mode (Postgres and
// Redis). A suite asks its backend for a deployment and starts servers on it;
// it never knows which implementations sit behind the port.
import { randomBytes } from "node:crypto";
import { cpSync } from "node:fs";
import { Writable } from "node:stream";
import pg from "pg";
import { pino } from "pino";
import { openDatabase } from "../../services/db/client.js";
import { freshDatabase, freshRedis, scratchDir } from "./infra.js";
import { startServer, type Env, type InProcessServer } from "./servers.js";

/** One Parley process of a deployment, running in the test's process. */
export interface TestServer {
  /** host:port of its gRPC port. */
  address: string;
  /** Every line it logged at warn level or above, as pino JSON. */
  logs: string[];
  /** The server's own ordered shutdown; idempotent. */
  shutdown(): Promise<void>;
}

/** Rows a statement touched. */
export type Sql = (text: string, params?: unknown[]) => Promise<{ rowCount: number }>;

/** A fresh, empty installation: its own database (and Redis, in the cluster mode). */
export interface Deployment {
  /**
   * Starts a server on this deployment with `env` on top of the backend's own
   * settings. In the cluster mode every server is another pod on the same
   * database and Redis; in the embedded mode each one is a separate
   * installation in a folder of its own, since PGlite belongs to one process.
   */
  start(env?: Env): Promise<TestServer>;
  /**
   * Runs SQL on the deployment's database from outside the servers, where a
   * test can reach it: Postgres can, the embedded PGlite (locked by the
   * process that holds it) cannot.
   */
  sql?: Sql;
  /** Stops every server it started, then its Redis; for `test.after.always`. */
  close(): Promise<void>;
}

export interface Backend {
  /** Short, for test titles: "embedded" or "cluster". */
  name: string;
  /** Whether its deployments offer `sql`. */
  databaseFromOutside: boolean;
  deploy(): Promise<Deployment>;
}

/** A warn-level pino logger whose lines land in `lines`, so that a suite can assert the server logged no error. */
function capturingLogger(lines: string[]) {
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString().split("\n").filter(Boolean));
      done();
    },
  });
  return pino({ level: process.env.TEST_LOG_LEVEL ?? "warn" }, sink);
}

/** Starts servers in this process, keeps them for `close`, and logs each to its own list. */
function serverList(base: () => Promise<Env>) {
  const servers: InProcessServer[] = [];
  return {
    async start(env: Env = {}): Promise<TestServer> {
      const logs: string[] = [];
      // The contract does not depend on the grace's length (test/presence.test.ts checks it): the shortest keeps the suites quick.
      const server = await startServer({ PRESENCE_GRACE_SECONDS: "1", ...(await base()), ...env }, { log: capturingLogger(logs) });
      servers.push(server);
      return { address: server.address, logs, shutdown: () => server.shutdown() };
    },
    async close(): Promise<void> {
      await Promise.all(servers.map((server) => server.shutdown()));
    },
  };
}

let template: Promise<string> | undefined;

/**
 * A PGlite folder with every migration applied, made once per test process.
 * Copying it takes about 0.2 s where a new folder takes 4 to 6 s to
 * initialise and migrate; test/embedded.test.ts still starts from nothing.
 */
function migratedFolder(): Promise<string> {
  template ??= (async () => {
    const dataDir = scratchDir("pglite-template");
    const database = await openDatabase({ databaseUrl: undefined, dataDir, log: pino({ level: "silent" }) });
    try {
      await database.migrate();
    } finally {
      await database.close();
    }
    return dataDir;
  })();
  return template;
}

/** `npm start` with nothing set: PGlite in a scratch folder, and every shared state in memory. */
export const embedded: Backend = {
  name: "embedded",
  databaseFromOutside: false,
  async deploy() {
    const servers = serverList(async () => {
      const dataDir = scratchDir("embedded");
      cpSync(await migratedFolder(), dataDir, { recursive: true });
      return { DATABASE_URL: undefined, REDIS_URL: undefined, PARLEY_DATA_DIR: dataDir };
    });
    return { start: servers.start, close: servers.close };
  },
};

/** The cluster mode: a fresh Postgres database and a Redis of the deployment's own; each server is a pod with its own name. */
export const cluster: Backend = {
  name: "cluster",
  databaseFromOutside: true,
  async deploy() {
    const [databaseUrl, redis] = await Promise.all([freshDatabase(), freshRedis()]);
    const servers = serverList(async () => ({
      DATABASE_URL: databaseUrl,
      REDIS_URL: redis.url,
      POD_NAME: `pod-${randomBytes(3).toString("hex")}`,
    }));
    return {
      start: servers.start,
      sql: (text, params) => query(databaseUrl, text, params),
      close: async () => {
        await servers.close();
        await redis.stop();
      },
    };
  },
};

async function query(url: string, text: string, params: unknown[] = []): Promise<{ rowCount: number }> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const result = await client.query(text, params);
    return { rowCount: result.rowCount ?? 0 };
  } finally {
    await client.end();
  }
}
