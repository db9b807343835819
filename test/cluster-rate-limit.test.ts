// The rate limit is per user across the whole cluster (design.md, errors
// table): two pods on one Redis share each user's budget, a retry through the
// other pod is still answered with the original, and Redis being down never
// refuses a send nor answers INTERNAL (each pod then limits on its own).
import { status, type ServiceError } from "@grpc/grpc-js";
import anyTest, { type TestFn } from "ava";
import type { Message } from "../gen/parley/chat/v1/chat.js";
import type { LocalRedis } from "../scripts/local-services.js";
import { ParleyApi } from "../services/client/api.js";
import { newUser, type TestUser } from "./helpers/clients.js";
import { freshDatabase, freshRedis } from "./helpers/infra.js";
import { spawnServer, stopPod, type ChildServer } from "./helpers/servers.js";

interface Context {
  redis: LocalRedis;
  /** Stops Redis once (LocalRedis.stop waits for an exit that already happened when called again). */
  stopRedis(): Promise<void>;
  pods: ChildServer[];
}
// Serial: each test counts on a second's budget.
const test = anyTest.serial as TestFn<Context>;

test.before(async (t) => {
  const redis = await freshRedis();
  const env = { DATABASE_URL: await freshDatabase(), REDIS_URL: redis.url, RATE_LIMIT_BURST: "3", RATE_LIMIT_PER_SECOND: "1" };
  // One after the other: the first applies the migrations.
  const first = await spawnServer(env);
  const second = await spawnServer(env);
  let stopped: Promise<void> | undefined;
  Object.assign(t.context, { redis, pods: [first, second], stopRedis: () => (stopped ??= redis.stop()) });
});
test.after.always(async (t) => {
  await Promise.all((t.context.pods ?? []).map((pod) => stopPod(pod)));
  await t.context.stopRedis?.();
});

/** The user's calls through each pod. */
function through(t: { context: Context; teardown(fn: () => void): void }, user: TestUser): ParleyApi[] {
  return t.context.pods.map((pod) => {
    const api = new ParleyApi(pod.address, user.token);
    t.teardown(() => api.close());
    return api;
  });
}

async function outcome(send: Promise<Message>): Promise<Message | number> {
  try {
    return await send;
  } catch (err) {
    return (err as ServiceError).code;
  }
}

/** What RATE_LIMIT_BURST=3 and RATE_LIMIT_PER_SECOND=1 let through since `started`, cluster-wide. */
const allowed = (started: number) => 3 + Math.ceil((Date.now() - started) / 1000);

test("two pods share one user's budget: sends through both are cut at the burst, not at twice it", async (t) => {
  const [ana, ben] = await Promise.all([newUser(t.context.pods[0].address), newUser(t.context.pods[0].address)]);
  const [one, two] = through(t, ana);
  const started = Date.now();
  const results: (Message | number)[] = [];
  for (let i = 0; i < 6; i++) results.push(await outcome((i % 2 === 0 ? one : two).send({ username: ben.username }, `m${i}`, `c-${i}`)));
  const passed = results.filter((r) => typeof r !== "number");
  const refused = results.filter((r) => typeof r === "number");
  t.true(passed.length >= 3 && passed.length <= allowed(started), `${passed.length} of 6 passed`);
  t.true(passed.length < 6, "each pod had a budget of its own");
  t.deepEqual(refused, Array(refused.length).fill(status.RESOURCE_EXHAUSTED));
  t.deepEqual(
    (passed as Message[]).map((m) => m.seq),
    passed.map((_, i) => i + 1),
  );
});

test("with the budget spent through one pod, a retry through the other returns the original", async (t) => {
  const [ana, ben] = await Promise.all([newUser(t.context.pods[0].address), newUser(t.context.pods[0].address)]);
  const [one, two] = through(t, ana);
  const started = Date.now();
  const sent = [];
  for (const id of ["k-1", "k-2", "k-3"]) sent.push(await one.send({ username: ben.username }, id, id));
  const retried = await two.send({ username: ben.username }, "k-1", "k-1");
  t.is(retried.id, sent[0].id);
  t.is(retried.seq, 1);
  const fresh = await outcome(two.send({ username: ben.username }, "k-4", "k-4"));
  if (Date.now() - started < 1000) t.is(fresh, status.RESOURCE_EXHAUSTED);
});

// Last: it stops the file's Redis.
test("with Redis down, sends through either pod still commit, and a flood is still cut on each pod", async (t) => {
  const [ana, ben, carl] = await Promise.all([1, 2, 3].map(() => newUser(t.context.pods[0].address)));
  const [one] = through(t, ana);
  // With Redis up, a retry of a message whose budget is spent is the original.
  const spent = [];
  for (const id of ["r-1", "r-2", "r-3"]) spent.push(await outcome(one.send({ username: ben.username }, id, id)));
  t.deepEqual(await outcome(one.send({ username: ben.username }, "r-1", "r-1")), spent[0]);

  await t.context.stopRedis();
  const [carlOne, carlTwo] = through(t, carl);
  const started = Date.now();
  const results: (Message | number)[] = [];
  for (let i = 0; i < 5; i++) results.push(await outcome(carlOne.send({ username: ben.username }, `d${i}`, `d-${i}`)));
  results.push(await outcome(carlTwo.send({ username: ben.username }, "d5", "d-5")));
  const codes = results.filter((r) => typeof r === "number");
  t.deepEqual(
    [...new Set(codes)].filter((c) => c !== status.RESOURCE_EXHAUSTED),
    [],
    "only RESOURCE_EXHAUSTED refuses",
  );
  t.true(typeof results[0] !== "number", "the first send passed");
  t.true(typeof results[5] !== "number", "the other pod's own budget is whole");
  t.true(results.slice(0, 5).filter((r) => typeof r !== "number").length <= allowed(started), "pod one still limits");
  for (const pod of t.context.pods)
    t.deepEqual(
      pod.logs.filter((line) => /"level":(50|60)/.test(line)),
      [],
      `${pod.pod} logged no error`,
    );
});
