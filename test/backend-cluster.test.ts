// The shared chat and auth suites on the cluster mode: Postgres and Redis
// (the Redis bus, presence, session cache and rate limit); the error suite's
// two servers are two pods of one cluster.
import test from "ava";
import { cluster } from "./helpers/backends.js";
import { authSuite } from "./suites/auth.js";
import { chatContractSuite } from "./suites/chat-contract.js";
import { chatErrorsSuite } from "./suites/chat-errors.js";

authSuite(test, cluster);
chatContractSuite(test, cluster);
chatErrorsSuite(test, cluster);
