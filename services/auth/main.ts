import { AuthServiceService } from "../../gen/parley/auth/v1/auth.js";
import type { Db } from "../db/client.js";
import { tolerantRequests } from "../lib/grpc-calls.js";
import type { HostedService } from "../lib/grpc-server.js";
import type { Logger } from "../lib/logger.js";
import { createAuthHandler } from "./auth-handler.js";
import { AuthDomain } from "./auth-service.js";
import type { SessionStore } from "./sessions.js";

/** The auth service, ready to host: `parley.auth.v1.AuthService`. */
export function createAuth(db: Db, sessions: SessionStore, log: Logger): HostedService {
  return {
    fullName: "parley.auth.v1.AuthService",
    definition: tolerantRequests(AuthServiceService),
    implementation: createAuthHandler(new AuthDomain(db, sessions, log), log),
  };
}
