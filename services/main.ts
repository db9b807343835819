// The process entry point: `npm start`. Reads the environment, starts the
// services it names, and drains on SIGTERM or SIGINT.
import { startParley } from "./app.js";
import { type Config, ConfigError, loadConfig } from "./lib/config.js";
import { FolderLockedError } from "./lib/dir-lock.js";
import { createLogger } from "./lib/logger.js";

let config: Config;
try {
  config = loadConfig();
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  process.stderr.write(`parley: ${err.message}\n`);
  process.exit(2);
}
const log = createLogger(config.logLevel, config.podName, { format: config.logFormat });
const starting = startParley(config, log).catch((err: unknown) => {
  log.fatal({ err }, "could not start");
  // A person starting a second server on the same folder reads this, not the JSON log.
  if (err instanceof FolderLockedError) process.stderr.write(`parley: ${err.message}\n`);
  process.exit(1);
});

// Installed before the start finishes: a signal that arrives once the port is
// open (and logged) but before startParley returns still drains.
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.once(signal, () => {
    log.info({ signal }, "shutting down");
    void starting.then((parley) => parley.shutdown()).then(() => process.exit(0));
  });
}
process.on("unhandledRejection", (err) => log.error({ err }, "unhandled rejection"));
