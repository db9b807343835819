// `npm run controller`: the bundled controller for clusters without KEDA.
// Reads its settings, runs the sync loop, and stops cleanly on SIGTERM or
// SIGINT (the tick in progress finishes; nothing is left half-written).
import { createLogger } from "../lib/logger.js";
import { type MetricsServer, startMetricsServer } from "../lib/metrics-server.js";
import { type ControllerConfig, ControllerConfigError, loadControllerConfig, readOwnNamespace } from "./config.js";
import { ControllerMetrics } from "./metrics.js";
import { runController } from "./sync-loop.js";

/** How long a stop may take before the process exits anyway: one tick's calls, with room to spare. */
const STOP_TIMEOUT_MS = 25_000;

let config: ControllerConfig;
try {
  config = loadControllerConfig(process.env, readOwnNamespace());
} catch (err) {
  if (!(err instanceof ControllerConfigError)) throw err;
  process.stderr.write(`parley controller: ${err.message}\n`);
  process.exit(2);
}

const log = createLogger(config.logLevel, config.podName, { format: config.logFormat });
const stop = new AbortController();
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.once(signal, () => {
    log.info({ signal }, "stopping");
    stop.abort();
    setTimeout(() => {
      log.error({ timeoutMs: STOP_TIMEOUT_MS }, "stop took too long; exiting");
      process.exit(1);
    }, STOP_TIMEOUT_MS).unref();
  });
}
process.on("unhandledRejection", (err) => log.error({ err }, "unhandled rejection"));

const metrics = new ControllerMetrics();
let metricsServer: MetricsServer | undefined;
try {
  if (config.metricsPort !== undefined) metricsServer = await startMetricsServer({ port: config.metricsPort, registry: metrics.registry, log });
  await runController(config, { log, signal: stop.signal, metrics });
  await metricsServer?.close();
  process.exit(0);
} catch (err) {
  log.fatal({ err }, "controller failed");
  process.exit(1);
}
