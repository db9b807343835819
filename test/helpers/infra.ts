// Real Postgres and Redis for one test file: a fresh database in the cluster
// that `npm test` started, and Redis servers of the file's own.
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import pg from "pg";
import { startRedis, type LocalRedis } from "../../scripts/local-services.js";

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the tests with \`npm test\`, which starts Postgres and Redis`);
  return value;
}

/** A new, empty database; migrations run when a server starts on it. */
export async function freshDatabase(): Promise<string> {
  const admin = new URL(required("PARLEY_TEST_PG_URL"));
  const name = `t_${randomBytes(6).toString("hex")}`;
  const client = new pg.Client({ connectionString: admin.toString() });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE ${name}`);
  } finally {
    await client.end();
  }
  admin.pathname = `/${name}`;
  return admin.toString();
}

/** A Redis of this test file's own: channels are global to a server, so files must not share one. */
export function freshRedis(port?: number): Promise<LocalRedis> {
  return startRedis(join(required("PARLEY_TEST_TMP"), "redis"), port);
}

/** A scratch folder inside the run's temporary folder. */
export function scratchDir(name: string): string {
  return join(required("PARLEY_TEST_TMP"), `${name}-${randomBytes(4).toString("hex")}`);
}
