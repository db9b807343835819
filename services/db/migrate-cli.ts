// `npm run migrate`: applies the migrations and exits, for a deploy step that runs them alone.
import { loadConfig } from "../lib/config.js";
import { createLogger } from "../lib/logger.js";
import { openDatabase } from "./client.js";

const config = loadConfig();
const log = createLogger(config.logLevel, config.podName, { format: config.logFormat });
const database = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, log });
try {
  await database.migrate();
} finally {
  await database.close();
}
