// Postgres faults under traffic (design.md, guarantees 1–4, "Live means live",
// "Authentication"): the DM's `conversations` row held by another transaction
// past the pods' statement timeout, and Postgres stopped and started again on
// the same folder and port. Each test has its own database, Redis and two pods
// and runs alone. The common checks are in helpers/faults.ts.
import { status, type ServiceError } from "@grpc/grpc-js";
import anyTest, { type TestFn } from "ava";
import pg from "pg";
import { startPostgres } from "../scripts/local-services.js";
import { fullHistory } from "./helpers/history.js";
import { cleanupsOf, runFault, startScene, type Committed } from "./helpers/faults.js";
import { freshDatabase, freshRedis, scratchDir } from "./helpers/infra.js";

const test = anyTest as TestFn<unknown>;

/**
 * The pods' statement timeout (DATABASE_STATEMENT_TIMEOUT_SECONDS), short so that the
 * test is. The lock below outlasts it, and the 10 s client timeout of old as well.
 */
const STATEMENT_TIMEOUT_MS = 2_000;
/** The longest the row is held: past the built-in 10 s timeout as well. */
const MAX_HOLD_MS = 13_000;

test.serial(
  "A row lock past the statement timeout: the blocked Send answers UNAVAILABLE, a retry stores it once, and ben's stream gets it live once it commits",
  async (t) => {
    const cleanup = cleanupsOf(t);
    const redis = await freshRedis();
    cleanup(() => redis.stop());
    const databaseUrl = await freshDatabase();
    const scene = await startScene(
      t,
      { databaseUrl, redisUrl: redis.url, env: { DATABASE_STATEMENT_TIMEOUT_SECONDS: String(STATEMENT_TIMEOUT_MS / 1000) } },
      cleanup,
    );
    const locker = new pg.Client({ connectionString: databaseUrl });
    await locker.connect();
    cleanup(() => locker.end());

    let answer: { code: number; details: string; at: number; seq?: number } | undefined;
    let sentAt = 0;
    let lockedAt = 0;
    let releasedAt = 0;
    const result = await runFault(t, scene, {
      inject: async () => {
        await locker.query("BEGIN");
        await locker.query("SELECT id FROM conversations WHERE id = $1 FOR UPDATE", [scene.dm]);
        lockedAt = Date.now();
      },
      atOnce: async () => {
        sentAt = Date.now();
        try {
          const m = await scene.anaApi.send(scene.toBen, "behind the lock", "locked-1");
          answer = { code: status.OK, details: "", at: Date.now(), seq: m.seq };
          scene.acked.push({ message: m, by: answer.at });
        } catch (err) {
          const e = err as ServiceError;
          answer = { code: e.code, details: e.details, at: Date.now() };
        }
      },
      holdMs: MAX_HOLD_MS,
      // Released a second after the blocked Send is answered, so that its statement may still be waiting then.
      holdUntil: () => pollAnswered().then(() => new Promise((r) => setTimeout(r, 1_000))),
      repair: async () => {
        await locker.query("COMMIT");
        releasedAt = Date.now();
      },
      afterRepair: async () => {
        // A statement that outlived its caller commits now: note when it is first seen in history.
        const deadline = Date.now() + 3_000;
        while (Date.now() < deadline) {
          const stored = (await fullHistory(scene.anaApi, scene.dm)).find((m) => m.clientMsgId === "locked-1");
          if (stored) {
            scene.acked.push({ message: stored, by: Date.now() } satisfies Committed);
            return;
          }
          await new Promise((r) => setTimeout(r, 100));
        }
      },
    });
    async function pollAnswered(): Promise<void> {
      while (answer === undefined) await new Promise((r) => setTimeout(r, 50));
    }

    t.not(answer, undefined);
    const a = answer as NonNullable<typeof answer>;
    t.log(
      `row locked at +0 ms; Send answered ${status[a.code]} "${a.details}" after ${a.at - sentAt} ms; released at +${releasedAt - lockedAt} ms; ` +
        result.notes.join("; "),
    );
    t.true(
      a.code === status.UNAVAILABLE || a.code === status.OK,
      `the blocked Send answers UNAVAILABLE (or OK once the row is free), never INTERNAL: got ${status[a.code]}`,
    );
    t.true(
      a.at - sentAt < STATEMENT_TIMEOUT_MS + 3_000,
      `answered within the statement timeout (${STATEMENT_TIMEOUT_MS} ms) plus 3 s: took ${a.at - sentAt} ms`,
    );
    // The retry returns one stored message, whatever became of the first attempt.
    const retry = await scene.send("behind the lock", "locked-1");
    const again = await scene.send("behind the lock", "locked-1");
    t.is(again.id, retry.id, "a second retry returns the same message");
    const stored = (await fullHistory(scene.anaApi, scene.dm)).filter((m) => m.clientMsgId === "locked-1");
    t.is(stored.length, 1, "locked-1 is stored exactly once");
  },
);

test.serial(
  "Postgres restarted under traffic: sends are acked or UNAVAILABLE, retries store each once, nothing acked is lost, streams resume, revocation holds after",
  async (t) => {
    const cleanup = cleanupsOf(t);
    const postgres = await startPostgres(scratchDir("pg-restart"));
    cleanup(() => postgres.stop());
    const redis = await freshRedis();
    cleanup(() => redis.stop());
    const scene = await startScene(t, { databaseUrl: postgres.url, redisUrl: redis.url }, cleanup);
    const result = await runFault(t, scene, {
      inject: () => postgres.stop(),
      holdMs: 3_000,
      repair: () => postgres.start(),
      revoke: "after",
    });
    t.log(`Postgres restarted: ${result.notes.join("; ")}`);
  },
);
