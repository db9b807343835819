import test from "ava";
import { hostname } from "node:os";
import { type Config, ConfigError, loadConfig, presenceBoundMs, presenceHeartbeatMs } from "./config.js";

/** Runs loadConfig and returns the ConfigError it must throw. */
function problemsOf(env: Record<string, string>): string[] {
  const err = (() => {
    try {
      loadConfig(env);
    } catch (e) {
      return e;
    }
    return undefined;
  })();
  if (!(err instanceof ConfigError)) throw new Error(`expected a ConfigError for ${JSON.stringify(env)}`);
  return err.problems;
}

test("an empty environment gives the documented defaults", (t) => {
  t.deepEqual(loadConfig({}), {
    grpcPort: 50051,
    webPort: 8080,
    metricsPort: 9464,
    services: ["auth", "chat", "scaler"],
    databaseUrl: undefined,
    databaseStatementTimeoutSeconds: 5,
    dataDir: "./.parley",
    redisUrl: undefined,
    podName: hostname(),
    logLevel: "info",
    logFormat: "auto",
    sessionTtlSeconds: 7 * 24 * 3600,
    rateLimitPerSecond: 20,
    rateLimitBurst: 50,
    streamQueueLimit: 1000,
    shutdownTimeoutSeconds: 20,
    maxConnectionAgeSeconds: 900,
    maxConnectionAgeGraceSeconds: 30,
    presenceTtlSeconds: 15,
    presenceGraceSeconds: 5,
  });
});

test("METRICS_PORT: a port, 0 for no metrics server (not a free port); anything else is a problem", (t) => {
  t.is(loadConfig({ METRICS_PORT: "9100" }).metricsPort, 9100);
  t.is(loadConfig({ METRICS_PORT: "0" }).metricsPort, undefined);
  t.is(loadConfig({ METRICS_PORT: "" }).metricsPort, 9464);
  t.true(problemsOf({ METRICS_PORT: "off" }).some((p) => p.includes("METRICS_PORT")));
  t.true(problemsOf({ METRICS_PORT: "65536" }).some((p) => p.includes("METRICS_PORT")));
});

test("WEB_PORT: a port, 0 for a free one, off (any case) for no web server; anything else is a problem", (t) => {
  t.is(loadConfig({ WEB_PORT: "9090" }).webPort, 9090);
  t.is(loadConfig({ WEB_PORT: " 0 " }).webPort, 0);
  t.is(loadConfig({ WEB_PORT: "off" }).webPort, undefined);
  t.is(loadConfig({ WEB_PORT: "OFF" }).webPort, undefined);
  t.is(loadConfig({ WEB_PORT: "" }).webPort, 8080);
  t.true(problemsOf({ WEB_PORT: "no" }).some((p) => p.includes("WEB_PORT")));
  t.true(problemsOf({ WEB_PORT: "70000" }).some((p) => p.includes("WEB_PORT")));
});

test("blank values count as unset", (t) => {
  const config = loadConfig({ GRPC_PORT: "  ", SERVICES: "", LOG_LEVEL: " ", DATABASE_URL: "" });
  t.is(config.grpcPort, 50051);
  t.deepEqual(config.services, ["auth", "chat", "scaler"]);
  t.is(config.logLevel, "info");
  t.is(config.databaseUrl, undefined);
});

test("good values are read, trimmed where they are numbers", (t) => {
  const config = loadConfig({
    GRPC_PORT: " 0 ",
    DATABASE_URL: "postgres://u:p@db:5432/parley",
    PARLEY_DATA_DIR: "/var/lib/parley",
    REDIS_URL: "rediss://cache:6380",
    POD_NAME: "chat-7f9c",
    LOG_LEVEL: "debug",
    LOG_FORMAT: "json",
    RATE_LIMIT_BURST: "5",
  });
  t.is(config.logFormat, "json");
  t.is(config.grpcPort, 0);
  t.is(config.databaseUrl, "postgres://u:p@db:5432/parley");
  t.is(config.dataDir, "/var/lib/parley");
  t.is(config.redisUrl, "rediss://cache:6380");
  t.is(config.podName, "chat-7f9c");
  t.is(config.logLevel, "debug");
  t.is(config.rateLimitBurst, 5);
});

const BAD: [string, string][] = [
  ["GRPC_PORT", "abc"],
  ["GRPC_PORT", "65536"],
  ["GRPC_PORT", "-1"],
  ["GRPC_PORT", "80.5"],
  ["SERVICES", "auth,web"],
  ["DATABASE_URL", "mysql://db/parley"],
  ["DATABASE_URL", "not a url"],
  ["REDIS_URL", "http://cache:6379"],
  ["LOG_LEVEL", "verbose"],
  ["LOG_FORMAT", "text"],
  ["LOG_FORMAT", "JSON"],
  ["SESSION_TTL_SECONDS", "59"],
  ["RATE_LIMIT_PER_SECOND", "0"],
  ["RATE_LIMIT_BURST", "many"],
  ["STREAM_QUEUE_LIMIT", "9"],
  ["SHUTDOWN_TIMEOUT_SECONDS", "601"],
  ["GRPC_MAX_CONNECTION_AGE_SECONDS", "0"],
  ["GRPC_MAX_CONNECTION_AGE_GRACE_SECONDS", "1e3"],
  ["PRESENCE_TTL_SECONDS", "21"],
  ["PRESENCE_TTL_SECONDS", "2"],
  ["PRESENCE_GRACE_SECONDS", "0"],
  ["PRESENCE_GRACE_SECONDS", "16"],
];

for (const [name, value] of BAD) {
  test(`${name}=${JSON.stringify(value)} is reported, naming the variable`, (t) => {
    const problems = problemsOf({ [name]: value });
    t.is(problems.length, 1);
    t.true(problems[0].startsWith(`${name} `), problems[0]);
  });
}

test("a bad URL's problem does not echo the value, which may hold a password", (t) => {
  const [problem] = problemsOf({ DATABASE_URL: "mysql://user:s3cret@db/parley" });
  t.false(problem.includes("s3cret"));
});

test("every bad value is reported at once in one ConfigError", (t) => {
  const err = t.throws(() => loadConfig({ GRPC_PORT: "x", LOG_LEVEL: "loud", REDIS_URL: "nope", SERVICES: "chat" }), {
    instanceOf: ConfigError,
  });
  t.deepEqual(
    err?.problems.map((p) => p.split(" ")[0]),
    ["GRPC_PORT", "REDIS_URL", "LOG_LEVEL"],
  );
  t.regex(err?.message ?? "", /GRPC_PORT[\s\S]*REDIS_URL[\s\S]*LOG_LEVEL/);
});

test("SERVICES is a comma list, with spaces allowed", (t) => {
  t.deepEqual(loadConfig({ SERVICES: "chat" }).services, ["chat"]);
  t.deepEqual(loadConfig({ SERVICES: " scaler , auth " }).services, ["scaler", "auth"]);
});

test("SERVICES collapses duplicates", (t) => {
  t.deepEqual(loadConfig({ SERVICES: "chat,auth,chat,chat" }).services, ["chat", "auth"]);
});

test("SERVICES rejects an unknown name, and a list with no names", (t) => {
  t.regex(problemsOf({ SERVICES: "chat,gateway" })[0], /^SERVICES .*"chat,gateway"/);
  t.regex(problemsOf({ SERVICES: " , " })[0], /^SERVICES /);
});

test("presence: every allowed TTL and grace announce a change within 30 s, with room for a slow Redis command and the publish", (t) => {
  let worst = 0;
  for (let ttl = 0; ttl <= 60; ttl++) {
    for (let grace = 0; grace <= 60; grace++) {
      let config: Config;
      try {
        config = loadConfig({ PRESENCE_TTL_SECONDS: String(ttl), PRESENCE_GRACE_SECONDS: String(grace) });
      } catch {
        continue; // not allowed
      }
      // Three heartbeats per lease, so a pod that misses one or two is not reaped while alive.
      t.true(presenceHeartbeatMs(config) * 3 <= ttl * 1000, `TTL ${ttl}`);
      worst = Math.max(worst, presenceBoundMs(config));
    }
  }
  t.true(worst <= 27_000, `worst case ${worst} ms`);
  t.is(worst, 20_000 + 6_666);
  t.is(presenceBoundMs(loadConfig({})), 15_000 + 5_000);
});
