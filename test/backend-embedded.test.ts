// The shared chat and auth suites on the embedded mode: PGlite in a scratch
// folder, and the bus, presence, session cache and rate limit in memory.
import test from "ava";
import { embedded } from "./helpers/backends.js";
import { authSuite } from "./suites/auth.js";
import { chatContractSuite } from "./suites/chat-contract.js";
import { chatErrorsSuite } from "./suites/chat-errors.js";

authSuite(test, embedded);
chatContractSuite(test, embedded);
chatErrorsSuite(test, embedded);
