import { mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { PGlite } from "@electric-sql/pglite";
import type { SQL } from "drizzle-orm";
import { drizzle as drizzlePg } from "drizzle-orm/node-postgres";
import { migrate as migratePg } from "drizzle-orm/node-postgres/migrator";
import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";
import pg from "pg";
import { lockFolder } from "../lib/dir-lock.js";
import { isUnavailable, markDependencyFailure } from "../lib/app-error.js";
import type { Logger } from "../lib/logger.js";
import * as schema from "./schema.js";

export type Db = PgDatabase<PgQueryResultHKT, typeof schema>;

/** Runs `text` as the named prepared statement `name` (PGlite: a plain parameterised query) and returns its rows. */
export type PreparedQuery = <T>(name: string, text: string, values: unknown[]) => Promise<T[]>;

/** An open database: Postgres through `pg`, or PGlite on disk for the embedded mode. */
export interface Database {
  readonly db: Db;
  readonly kind: "pg" | "pglite";
  /** For the hot path: a statement Postgres plans once per connection. */
  readonly prepared: PreparedQuery;
  /** Applies the committed migrations; pods that start together take turns under an advisory lock. */
  migrate(): Promise<void>;
  close(): Promise<void>;
}

const MIGRATIONS = fileURLToPath(new URL("./migrations", import.meta.url));
/** Any constant works; this one spells "parley" on a phone keypad. */
const MIGRATION_LOCK_KEY = 727539;

export interface DatabaseOptions {
  databaseUrl: string | undefined;
  dataDir: string;
  log: Logger;
  /** Connections in the pg pool. Default 10. */
  poolSize?: number;
  /**
   * Postgres cancels a statement after this (`statement_timeout`), so its
   * outcome is known: rolled back. The client stops waiting 2 s later
   * (`query_timeout`, for a connection that went silent), and that outcome is
   * unknown. Both answer UNAVAILABLE (lib/errors.ts). Default 5000 ms.
   */
  statementTimeoutMs?: number;
  /** Told of every Postgres call that failed because of Postgres (not of its input), for the metrics. Default none. */
  onFailure?: () => void;
}

export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  return options.databaseUrl === undefined ? openPglite(options.dataDir, options.log) : openPg(options);
}

type Callback = (err: unknown, ...results: unknown[]) => void;
/** Marks a failure (markDependencyFailure) and returns it. */
type Mark = (err: unknown) => unknown;
/** A callback that marks the error it is called with. */
const marking =
  (callback: Callback, mark: Mark): Callback =>
  (err, ...results) =>
    callback(err ? mark(err) : err, ...results);

/**
 * pg's client, marking what its queries fail with: pg names a lost or silent
 * connection only in the message text ("Connection terminated", "Query read
 * timeout"), and lib/errors.ts tells outages apart by code.
 */
function markingClient(mark: Mark): typeof pg.Client {
  return class MarkingClient extends pg.Client {
    // biome-ignore lint/suspicious/noExplicitAny: pg's query has a dozen overloads; the arguments pass through unchanged
    override query(...args: any[]): any {
      const last = args.length - 1;
      if (typeof args[last] === "function") args[last] = marking(args[last], mark);
      // biome-ignore lint/suspicious/noExplicitAny: as above
      const result = (super.query as (...a: any[]) => any)(...args);
      return result instanceof Promise ? result.catch((err: unknown) => Promise.reject(mark(err))) : result;
    }
  };
}

/** pg's pool with a marking client, marking its own failures too (no connection within connectionTimeoutMillis). */
class MarkingPool extends pg.Pool {
  constructor(
    config: pg.PoolConfig,
    private readonly mark: Mark,
  ) {
    super({ ...config, Client: markingClient(mark) });
  }

  // biome-ignore lint/suspicious/noExplicitAny: pg's connect overloads; the arguments pass through unchanged
  override connect(...args: any[]): any {
    if (typeof args[0] === "function") return super.connect(marking(args[0], this.mark));
    return super.connect().catch((err: unknown) => Promise.reject(this.mark(err)));
  }
}

function openPg({ databaseUrl, log, poolSize, statementTimeoutMs = 5_000, onFailure }: DatabaseOptions): Database {
  const mark: Mark = (err) => {
    const marked = markDependencyFailure(err);
    if (onFailure !== undefined && isUnavailable(marked)) onFailure();
    return marked;
  };
  const pool = new MarkingPool(
    {
      connectionString: databaseUrl,
      max: poolSize ?? 10,
      // Fail fast while Postgres is down, so that sends answer UNAVAILABLE instead of hanging.
      connectionTimeoutMillis: 3000,
      statement_timeout: statementTimeoutMs,
      query_timeout: statementTimeoutMs + 2_000,
      idleTimeoutMillis: 30_000,
      // The send's append (append-statements.ts) takes arrays whose sizes the planner cannot
      // know, so Postgres kept planning it anew each time: a custom plan cost 0.85 ms of backend
      // CPU a send against 0.22 ms with the cached generic plan (measured one DM at a time). This
      // applies to every parameterised statement on these connections, drizzle's too: they get
      // a generic plan, still built per call for unnamed ones. Ours are equality and range
      // lookups on indexed columns (history, ranges, client_msg_id, ANY($1)), for which the
      // generic plan is the same index scan; the test suites pass with it, but we have not
      // compared each plan. The risk: a generic plan is cached from the statistics of its time,
      // and is rebuilt only when the tables are analyzed again; a subquery over a table that was
      // small then (a NOT EXISTS on messages, tried and removed) can stay a full scan meanwhile.
      options: "-c plan_cache_mode=force_generic_plan",
    },
    mark,
  );
  // An idle client losing its connection must not crash the process; the pool replaces it.
  pool.on("error", (err) => log.warn({ err }, "idle Postgres connection failed"));
  const db = drizzlePg(pool, { schema }) as unknown as Db;
  return {
    db,
    kind: "pg",
    prepared: async <T>(name: string, text: string, values: unknown[]) => (await pool.query({ name, text, values })).rows as T[],
    async migrate() {
      // A connection of its own, without the pool's timeouts: waiting for another pod's
      // migrations, or one ALTER TABLE on a busy machine, may take longer than a send's
      // statement may (the pool's 7 s query_timeout once failed a start in CI). TCP
      // keep-alive still notices a peer that is gone.
      const MarkingClient = markingClient(mark);
      const client = new MarkingClient({ connectionString: databaseUrl, connectionTimeoutMillis: 3000, keepAlive: true });
      client.on("error", (err) => log.warn({ err }, "migration connection failed"));
      await client.connect().catch((err: unknown) => Promise.reject(mark(err)));
      try {
        await client.query("SET statement_timeout = 0");
        await client.query("SELECT pg_advisory_lock($1)", [MIGRATION_LOCK_KEY]);
        try {
          await migratePg(drizzlePg(client, { schema }), { migrationsFolder: MIGRATIONS });
        } finally {
          // Released even when a migration fails (closing the connection would release it too).
          await client.query("SELECT pg_advisory_unlock($1)", [MIGRATION_LOCK_KEY]).catch(() => undefined);
        }
      } finally {
        await client.end().catch(() => undefined);
      }
      log.info("database migrations applied");
    },
    close: () => pool.end(),
  };
}

/** PGlite in `dataDir`, which this process then owns: a second process is refused (FolderLockedError) before it touches the folder. */
async function openPglite(dataDir: string, log: Logger): Promise<Database> {
  // Imported here, not at the top: a pod on Postgres never loads PGlite (about 3 MB of RSS).
  const [{ PGlite }, { drizzle: drizzlePglite }, { migrate: migratePglite }] = await Promise.all([
    import("@electric-sql/pglite"),
    import("drizzle-orm/pglite"),
    import("drizzle-orm/pglite/migrator"),
  ]);
  mkdirSync(dataDir, { recursive: true });
  const lock = lockFolder(dataDir);
  let client: PGlite;
  try {
    client = await PGlite.create(dataDir);
  } catch (err) {
    lock.release();
    throw err;
  }
  log.info({ dataDir }, "using embedded PGlite");
  const db = drizzlePglite(client, { schema }) as unknown as Db;
  return {
    db,
    kind: "pglite",
    prepared: async <T>(_name: string, text: string, values: unknown[]) => (await client.query<T>(text, values)).rows,
    async migrate() {
      // One process owns a PGlite folder (the folder lock), so no advisory lock is needed.
      await migratePglite(drizzlePglite(client, { schema }), { migrationsFolder: MIGRATIONS });
      log.info("database migrations applied");
    },
    async close() {
      try {
        await client.close();
      } finally {
        lock.release();
      }
    },
  };
}

/**
 * A Postgres array literal of integer ids, to pass as one parameter
 * (`= ANY(${ids}::bigint[])`): drizzle's `sql` would spread a JS array into
 * one parameter per element. Numbers only, so it needs no escaping.
 */
export const bigintArray = (ids: number[]): string => `{${ids.map((id) => Math.trunc(id)).join(",")}}`;

/** Runs raw SQL and returns its rows; both drivers answer with `{ rows }`. */
export async function queryRows<T>(db: Db, query: SQL): Promise<T[]> {
  const result = (await db.execute(query)) as unknown as { rows: T[] };
  return result.rows;
}
