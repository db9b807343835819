// The shared chat and auth suites on the embedded mode: PGlite in a scratch
// folder, and the bus, presence, session cache and rate limit in memory.
import test from "ava";
import { embedded } from "./helpers/backends.js";
import { authSuite } from "./suites/auth.js";
import { chatContractSuite } from "./suites/chat-contract.js";
import { chatErrorsSuite } from "./suites/chat-errors.js";

// One test at a time: PGlite runs on this process's one thread, like the embedded server it stands for, so
// tests run together queue behind each other's statements (a history test's few hundred sends held a
// sign-up past its 10 s deadline on a loaded machine).
authSuite(test.serial, embedded);
chatContractSuite(test.serial, embedded);
chatErrorsSuite(test.serial, embedded);
