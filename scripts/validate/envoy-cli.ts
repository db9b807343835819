// `npx tsx scripts/validate/envoy-cli.ts [envoy/envoy.yaml]`: prints every
// problem and exits 1 when there is any. `npm test` runs the same checks
// through test/envoy-config.test.ts.
import { formatProblem, readEnvoyConfig, validateEnvoyConfig } from "./envoy.js";

const file = process.argv[2] ?? "envoy/envoy.yaml";
const problems = validateEnvoyConfig(readEnvoyConfig(file));
for (const problem of problems) process.stderr.write(`${file}: ${formatProblem(problem)}\n`);
if (problems.length === 0) process.stdout.write(`${file}: valid (Envoy v3 protos and Parley's edge rules)\n`);
process.exit(problems.length === 0 ? 0 : 1);
