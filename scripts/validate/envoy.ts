// Offline validation of envoy/envoy.yaml. No Envoy binary can run on the
// development machines or in CI, so the config is read the way Envoy reads it:
// strictly, against Envoy's own v3 protos (./envoy-protos.ts, ./proto-walk.ts),
// and then against what Parley needs from its edge (./envoy-rules.ts).
import { readFileSync } from "node:fs";
import { parse } from "yaml";
import { loadEnvoyProtos } from "./envoy-protos.js";
import { checkParleyEdge, PARLEY_EDGE, type EdgeExpectations } from "./envoy-rules.js";
import { walkMessage, type Problem } from "./proto-walk.js";

export type { Problem } from "./proto-walk.js";

/**
 * Every problem with a parsed Envoy config (a Bootstrap), empty when it is
 * good. Schema problems come first; Parley's own rules are checked only on a
 * config that passes the schema, so one typo does not cascade.
 */
export function validateEnvoyConfig(config: unknown, expect: EdgeExpectations = PARLEY_EDGE): Problem[] {
  const protos = loadEnvoyProtos();
  const schema = walkMessage(config, protos.bootstrap, protos.resolve);
  return schema.length > 0 ? schema : checkParleyEdge(config, expect);
}

/** Reads a YAML config; duplicate keys are an error, as in Envoy. */
export function readEnvoyConfig(file: string): unknown {
  return parse(readFileSync(file, "utf8"), { uniqueKeys: true, prettyErrors: true });
}

/** `path: message`, one line per problem. */
export function formatProblem(problem: Problem): string {
  return `${problem.path || "(root)"}: ${problem.message}`;
}
