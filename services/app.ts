import { createAuth } from "./auth/main.js";
import { SessionStore } from "./auth/sessions.js";
import { createChat } from "./chat/main.js";
import { openDatabase } from "./db/client.js";
import type { Clock } from "./lib/clock.js";
import type { Config } from "./lib/config.js";
import { startProbes, type Probe } from "./lib/dependency-probe.js";
import { metricsInterceptor } from "./lib/grpc-metrics.js";
import { startGrpcServer, type HostedService } from "./lib/grpc-server.js";
import type { Logger } from "./lib/logger.js";
import { ServerMetrics } from "./lib/metrics.js";
import { startMetricsServer, type MetricsServer } from "./lib/metrics-server.js";
import { createShutdown } from "./lib/shutdown.js";
import { createOps } from "./ops/main.js";
import { PodReporter } from "./ops/pod-reporter.js";
import { createScaler } from "./scaler/main.js";
import { openBackends } from "./backends.js";
import { buildWebApp } from "./web/app-bundle.js";
import { startWebServer, type WebServer } from "./web/web-server.js";

export interface Parley {
  readonly port: number;
  /** The web server's port (the app and gRPC-web), or undefined when WEB_PORT is off. */
  readonly webPort: number | undefined;
  /** The port of `/metrics` (Prometheus), or undefined when METRICS_PORT is 0. */
  readonly metricsPort: number | undefined;
  /** The ordered, idempotent, time-bounded drain; resolves when everything is closed. */
  shutdown(): Promise<void>;
}

export interface ParleyOptions {
  /** Schedules the dependency probes (parley_dependency_up). Default the system clock. */
  clock?: Clock;
}

/** Starts the services that `config.services` names, on one gRPC port, and their metrics on METRICS_PORT. */
export async function startParley(config: Config, log: Logger, options: ParleyOptions = {}): Promise<Parley> {
  const metrics = new ServerMetrics();
  const dependencyErrors = (dependency: "postgres" | "redis") => {
    const counter = metrics.dependencyErrors.labels(dependency);
    counter.inc(0);
    return () => counter.inc();
  };
  // Bundled while the database opens; awaited (and its errors seen) only when the web server starts.
  const webFiles = config.webPort === undefined ? undefined : buildWebApp();
  webFiles?.catch(() => undefined);
  const database = await openDatabase({
    databaseUrl: config.databaseUrl,
    dataDir: config.dataDir,
    log,
    statementTimeoutMs: config.databaseStatementTimeoutSeconds * 1000,
    onFailure: config.databaseUrl === undefined ? undefined : dependencyErrors("postgres"),
  });
  // A start that fails before the shutdown below exists closes what it opened, so that an
  // embedding process (the tests start servers in theirs) is not kept alive by it.
  const abandon =
    (...closes: (() => unknown)[]) =>
    async (err: unknown): Promise<never> => {
      for (const close of closes) {
        try {
          await close();
        } catch {
          // The start's own error is the one to report.
        }
      }
      throw err;
    };
  await database.migrate().catch(abandon(() => database.close()));
  const backends = await openBackends(config, log, {
    onRedisFailure: config.redisUrl === undefined ? undefined : dependencyErrors("redis"),
  }).catch(abandon(() => database.close()));
  const { bus, presence, sessionCache, rateLimiter, podReports, scalingDecisions, close: closeBackends } = backends;
  const sessions = new SessionStore(database.db, sessionCache, config.sessionTtlSeconds, log);

  const hosted: HostedService[] = [];
  if (config.services.includes("auth")) hosted.push(createAuth(database.db, sessions, log));
  const chat = config.services.includes("chat")
    ? createChat({ config, db: database.db, prepared: database.prepared, bus, presence, sessions, rateLimiter, metrics, log })
    : undefined;
  /** Aborted when the drain starts: stops the background loops. */
  const running = new AbortController();
  if (chat) {
    hosted.push(chat.service);
    sessionCache.onRevoked((sessionId) => chat.endSession(sessionId));
    chat.reconcile(running.signal);
  }

  const scaler = config.services.includes("scaler") ? createScaler(presence, log) : undefined;
  if (scaler) hosted.push(scaler.service, createOps({ presence, reports: podReports, decisions: scalingDecisions, log }));
  if (chat || scaler) metrics.readOnlineUsersFrom(() => presence.onlineCount());

  const server = await startGrpcServer({
    port: config.grpcPort,
    services: hosted,
    log,
    maxConnectionAgeMs: config.maxConnectionAgeSeconds * 1000,
    maxConnectionAgeGraceMs: config.maxConnectionAgeGraceSeconds * 1000,
    interceptors: [metricsInterceptor(metrics)],
  }).catch(
    abandon(
      () => running.abort(),
      () => presence.close(),
      () => closeBackends(),
      () => database.close(),
    ),
  );
  // Started once nothing else can fail before the shutdown exists to stop them.
  // Embedded: PGlite stands for Postgres, and there is no Redis to probe.
  const probes: Probe[] = [{ name: "postgres", check: () => database.prepared("parley_probe", "SELECT 1", []) }];
  if (backends.pingRedis) probes.push({ name: "redis", check: backends.pingRedis });
  startProbes(probes, {
    signal: running.signal,
    clock: options.clock,
    onResult: (name, up) => metrics.dependencyUp.labels(name).set(up ? 1 : 0),
  });

  // This process's line on the operations dashboard, read from its metrics every second.
  const reporter = new PodReporter({
    pod: config.podName,
    services: config.services,
    metrics,
    used: { postgres: true, redis: config.redisUrl !== undefined },
    reports: podReports,
    log,
    clock: options.clock,
  });
  reporter.start();

  let web: WebServer | undefined;
  let metricsServer: MetricsServer | undefined;
  const timeoutMs = config.shutdownTimeoutSeconds * 1000;
  const shutdown = createShutdown(log, timeoutMs, [
    {
      name: "health NOT_SERVING",
      run: () => {
        metrics.startDraining();
        server.markNotServing();
        void reporter.reportNow(); // the dashboard shows the drain at once
      },
    },
    {
      name: "drain streams",
      run: () => {
        running.abort();
        scaler?.endStreams();
        log.info({ streams: chat?.drain("pod shutting down") ?? 0 }, "streams drained");
      },
    },
    // After the drain, so that the drain frame and the UNAVAILABLE that ends each stream reach the browsers.
    { name: "close web server", run: () => web?.close(timeoutMs / 4) },
    { name: "finish in-flight calls", run: () => server.close(timeoutMs / 2) },
    { name: "finish in-flight sends", run: () => chat?.waitForSends() },
    // The removals of the drained streams, then this pod's presence, then the announcements they caused.
    { name: "finish presence removals", run: () => chat?.waitForPresence() },
    { name: "remove presence", run: () => presence.close() },
    { name: "finish presence announcements", run: () => chat?.waitForPresence() },
    { name: "close bus", run: () => bus.close() },
    { name: "close session cache", run: () => sessionCache.close() },
    { name: "remove pod report", run: () => reporter.stop() },
    { name: "close Redis", run: () => closeBackends() },
    { name: "close database", run: () => database.close() },
    // Last, so that Prometheus can watch the whole drain.
    { name: "close metrics server", run: () => metricsServer?.close() },
  ]);
  try {
    if (config.metricsPort !== undefined) metricsServer = await startMetricsServer({ port: config.metricsPort, registry: metrics.registry, log });
    if (config.webPort !== undefined && webFiles !== undefined) {
      web = await startWebServer({ port: config.webPort, grpcPort: server.port, files: await webFiles, log });
    }
  } catch (err) {
    // METRICS_PORT or WEB_PORT taken, or the app does not build: nothing else may stay open.
    await shutdown();
    throw err;
  }
  return { port: server.port, webPort: web?.port, metricsPort: metricsServer?.port, shutdown };
}
