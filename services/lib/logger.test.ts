import { Writable } from "node:stream";
import { stripVTControlCharacters } from "node:util";
import test from "ava";
import { createLogger, type LogFormat, resolveLogFormat } from "./logger.js";

/** A destination that keeps what the logger wrote, and says whether it is a terminal. */
function sink(isTTY: boolean) {
  const chunks: string[] = [];
  const destination = Object.assign(
    new Writable({
      write(chunk, _encoding, done) {
        chunks.push(String(chunk));
        done();
      },
    }),
    { isTTY },
  );
  return { chunks, destination };
}

/** Lets the pretty stream's pipe deliver what was logged (in production it writes fd 1 synchronously). */
const settled = () => new Promise((resolve) => setImmediate(resolve));

test("auto is pretty on a terminal and JSON elsewhere; json and pretty are what they say", (t) => {
  const cases: Array<[LogFormat, boolean, "json" | "pretty"]> = [
    ["auto", true, "pretty"],
    ["auto", false, "json"],
    ["json", true, "json"],
    ["pretty", false, "pretty"],
  ];
  for (const [format, isTerminal, expected] of cases) t.is(resolveLogFormat(format, isTerminal), expected, `${format} on ${isTerminal}`);
});

test("JSON lines off a terminal: one object a line, with pod, component and an ISO time", (t) => {
  const { chunks, destination } = sink(false);
  createLogger("info", "pod-a", { destination }).child({ component: "chat" }).info({ streams: 2 }, "drained");
  const line = JSON.parse(chunks.join(""));
  t.like(line, { level: 30, pod: "pod-a", component: "chat", streams: 2, msg: "drained" });
  t.regex(line.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
});

test("pretty lines on a terminal: time, level, [pod] component: message, then the fields", async (t) => {
  const { chunks, destination } = sink(true);
  createLogger("info", "pod-a", { destination }).child({ component: "chat" }).info({ streams: 2 }, "drained");
  await settled();
  const text = stripVTControlCharacters(chunks.join(""));
  t.regex(text, /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: \[pod-a\] chat: drained \{"streams":2\}\n$/);
});

test("an error's stack is shown on the lines below in pretty mode, and kept in JSON", async (t) => {
  const pretty = sink(true);
  createLogger("info", "p", { destination: pretty.destination }).error({ err: new Error("boom") }, "failed");
  await settled();
  const text = stripVTControlCharacters(pretty.chunks.join(""));
  t.regex(text, /ERROR: \[p\] failed/);
  t.regex(text, /\n\s+Error: boom\n\s+at /);
  const json = sink(false);
  createLogger("info", "p", { destination: json.destination }).error({ err: new Error("boom") }, "failed");
  t.like(JSON.parse(json.chunks.join("")).err, { type: "Error", message: "boom" });
});

for (const format of ["json", "pretty"] as const) {
  test(`${format}: passwords, tokens and authorization headers never reach a line`, async (t) => {
    const { chunks, destination } = sink(format === "pretty");
    const log = createLogger("debug", "p", { destination, format });
    log.info({ password: "hunter2", request: { token: "tok-secret", authorization: "Bearer abc.def" } }, "sign-in");
    log.child({ component: "auth" }).debug({ user: { password: "pw-2" } }, "nested");
    await settled();
    const text = chunks.join("");
    for (const secret of ["hunter2", "tok-secret", "abc.def", "pw-2"]) t.false(text.includes(secret), `${secret} in ${text}`);
    t.is(text.match(/\[redacted\]/g)?.length, 4);
  });
}

test("the level filters in both formats", async (t) => {
  for (const isTTY of [true, false]) {
    const { chunks, destination } = sink(isTTY);
    const log = createLogger("warn", "p", { destination });
    log.info("quiet");
    log.warn("loud");
    await settled();
    t.is(chunks.length, 1);
    t.true(chunks[0].includes("loud"));
  }
});
