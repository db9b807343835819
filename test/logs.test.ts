// Logs as a person and as a collector see them: `npm start` (services/main.ts)
// under a pseudo-terminal prints readable lines, and into a pipe prints JSON;
// LOG_FORMAT overrides either way; and no secret reaches a line in either
// format. `npm run cluster` shows its pods' JSON lines the same readable way
// (scripts/log-relay.ts). The pseudo-terminal is util-linux's `script`.
import { spawn } from "node:child_process";
import { PassThrough } from "node:stream";
import { fileURLToPath } from "node:url";
import { stripVTControlCharacters } from "node:util";
import anyTest, { type TestFn } from "ava";
import { freePort } from "../scripts/local-services.js";
import { relayLogLines } from "../scripts/log-relay.js";
import { eventually } from "./helpers/clients.js";
import { freshDatabase, scratchDir } from "./helpers/infra.js";
import { LocalScaleApiServer } from "./helpers/scale-api.js";

const test = anyTest as TestFn;
const REPO_ROOT = fileURLToPath(new URL("..", import.meta.url));

/** A readable line: `[HH:MM:ss.l] LEVEL: [pod] …`. */
const PRETTY = /^\[\d\d:\d\d:\d\d\.\d{3}\] (TRACE|DEBUG|INFO|WARN|ERROR|FATAL): \[[^\]]+\] /;

/** services/main.ts (or another entry point) with `env`, its stdout a terminal (`pty`) or a pipe. */
function startParley(pty: boolean, env: Record<string, string>, entry = "services/main.ts") {
  const command = [process.execPath, "--import", "tsx", entry];
  const fullEnv = {
    ...process.env,
    GRPC_PORT: "0",
    WEB_PORT: "off",
    METRICS_PORT: "0",
    PARLEY_DATA_DIR: scratchDir("logs"),
    LOG_LEVEL: "info",
    LOG_FORMAT: "auto",
    ...env,
  };
  const child = pty
    ? // `script` runs the command through $SHELL; `exec` makes the process the terminal's own, so Ctrl-C
      // reaches it alone. Without it a shell that stays (dash, the /bin/sh used when SHELL is unset)
      // dies of the SIGINT itself and the exit code is 130 whatever the process did.
      spawn("script", ["-qfec", `exec ${command.join(" ")}`, "/dev/null"], { cwd: REPO_ROOT, env: fullEnv, stdio: ["pipe", "pipe", "pipe"] })
    : spawn(command[0], command.slice(1), { cwd: REPO_ROOT, env: fullEnv, stdio: ["pipe", "pipe", "pipe"] });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return {
    /** What the process printed so far, one entry a line, colours and carriage returns removed. */
    lines: () =>
      stripVTControlCharacters(output)
        .split(/\r?\n/)
        // The terminal echoes Ctrl-C as "^C" without a newline, in front of the next line.
        .map((line) => line.replace(/\r/g, "").replace(/^(\^C)+/, ""))
        .filter((line) => line.trim() !== ""),
    /** Ctrl-C: through the terminal (which signals the process), or SIGINT directly. */
    interrupt: () => (pty ? child.stdin.write("\x03") : child.kill("SIGINT")),
    exited,
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    },
  };
}

const CASES = [
  { title: "on a terminal, by default, readable lines", pty: true, format: "auto", pretty: true },
  { title: "into a pipe, by default, JSON lines", pty: false, format: "auto", pretty: false },
  { title: "on a terminal with LOG_FORMAT=json, JSON lines", pty: true, format: "json", pretty: false },
  { title: "into a pipe with LOG_FORMAT=pretty, readable lines", pty: false, format: "pretty", pretty: true },
] as const;

for (const { title, pty, format, pretty } of CASES) {
  test(`npm start: ${title}, from start to Ctrl-C`, async (t) => {
    // Postgres rather than PGlite: the same process and logger, a much lighter start on a busy machine.
    const parley = startParley(pty, { LOG_FORMAT: format, POD_NAME: "logs-test", DATABASE_URL: await freshDatabase() });
    t.teardown(parley.kill);
    const listening = await eventually(
      async () => parley.lines().find((line) => line.includes("gRPC server listening")),
      (line) => line !== undefined,
      90_000,
    );
    if (pretty) t.regex(listening ?? "", new RegExp(`${PRETTY.source}.*gRPC server listening`));
    else t.like(JSON.parse(listening ?? ""), { level: 30, pod: "logs-test", msg: "gRPC server listening" });

    parley.interrupt();
    t.is(await parley.exited, 0, parley.lines().join("\n"));
    const logLines = parley.lines();
    t.true(logLines.length >= 3, logLines.join("\n"));
    for (const line of logLines) {
      if (pretty) t.regex(line, PRETTY, "every line is a readable one");
      else t.notThrows(() => JSON.parse(line), `not JSON: ${line}`);
    }
    t.true(
      logLines.some((line) => line.includes("shutting down")),
      logLines.join("\n"),
    );
  });
}

for (const pty of [true, false]) {
  test(`a failed start ${pty ? "on a terminal" : "into a pipe"} says why, without the database password`, async (t) => {
    const parley = startParley(pty, { DATABASE_URL: "postgres://parley:s3cret-pw@127.0.0.1:1/parley", SERVICES: "auth" });
    t.teardown(parley.kill);
    t.is(await parley.exited, 1);
    const text = parley.lines().join("\n");
    t.regex(text, pty ? /FATAL: \[[^\]]+\] could not start/ : /"level":60.*"msg":"could not start"/);
    t.false(text.includes("s3cret-pw"), text);
  });
}

test("npm run controller on a terminal: readable lines, and a scaler that stays down is logged on the 1st and 3rd tick, not every tick", async (t) => {
  const api = await LocalScaleApiServer.start({ namespace: "parley", name: "chat", replicas: 2, dir: scratchDir("kube") });
  t.teardown(() => api.stop());
  const controller = startParley(
    true,
    {
      KUBECONFIG: api.kubeconfig,
      SCALER_ADDRESS: `127.0.0.1:${await freePort()}`,
      TARGET_NAMESPACE: "parley",
      SYNC_INTERVAL_SECONDS: "1",
      POD_NAME: "controller-logs",
    },
    "services/controller/main.ts",
  );
  t.teardown(controller.kill);
  const unavailable = () => controller.lines().filter((line) => line.includes("metric unavailable"));
  // Real time: one tick a second. The 3rd failure is logged; the 4th to 6th would not be.
  await eventually(
    async () => unavailable(),
    (lines) => lines.some((line) => line.includes('"repeated":3')),
    20_000,
  );
  const lines = unavailable();
  t.is(lines.length, 2, lines.join("\n"));
  t.regex(lines[0], /^\[\d\d:\d\d:\d\d\.\d{3}\] WARN: \[controller-logs\] controller: metric unavailable; keeping the current replicas/);
  t.false(lines[0].includes('"repeated"'));
  t.deepEqual(api.requests, [], "the Deployment was not touched");

  controller.interrupt();
  t.is(await controller.exited, 0, controller.lines().join("\n"));
  // Each entry's first line is a readable one; an error's fields and stack follow, indented.
  for (const line of controller.lines().filter((l) => !l.startsWith(" "))) t.regex(line, PRETTY);
  t.regex(controller.lines().join("\n"), /\n\s+err: \{\n\s+"type": "ScalerReadError"/);
  t.true(controller.lines().some((line) => line.includes("controller stopped")));
});

test("npm run cluster's relay shows the pods' JSON lines readably, and passes other lines through", async (t) => {
  const pod = new PassThrough();
  const written: string[] = [];
  const relayed = relayLogLines(pod, { write: (text: string) => written.push(text) }, "pretty");
  pod.write('{"level":40,"time":"2026-12-01T10:00:00.000Z","pod":"pod-2","component":"chat","streams":3,"msg":"slow consumer"}\n');
  pod.write("parley: a line that is not JSON\n");
  pod.end('{"level":30,"time":"2026-12-01T10:00:01.000Z","pod":"pod-2","password":"[redacted]","msg":"no newline at the end"}');
  await relayed;
  t.is(written.length, 3);
  t.regex(written[0], /^\[\d\d:\d\d:\d\d\.000\] WARN: \[pod-2\] chat: slow consumer \{"streams":3\}\n$/);
  t.is(written[1], "parley: a line that is not JSON\n");
  t.regex(written[2], /INFO: \[pod-2\] no newline at the end \{"password":"\[redacted\]"\}\n$/);

  const json = new PassThrough();
  const copied: string[] = [];
  const copying = relayLogLines(json, { write: (text: string) => copied.push(text) }, "json");
  json.end('{"level":30,"msg":"as is"}\n');
  await copying;
  t.deepEqual(copied, ['{"level":30,"msg":"as is"}\n']);
});
