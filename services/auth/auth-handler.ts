import type { AuthServiceServer, User } from "../../gen/parley/auth/v1/auth.js";
import { bearerToken, unary } from "../lib/grpc-calls.js";
import type { Logger } from "../lib/logger.js";
import type { UserRef } from "../db/schema.js";
import type { AuthDomain, Grant } from "./auth-service.js";

const toUser = (user: UserRef): User => ({ id: String(user.id), username: user.username });
const toGrant = (grant: Grant) => ({ token: grant.token, user: toUser(grant.user), expiresAt: grant.expiresAt });

/** gRPC transport for AuthService: decode, call the domain, encode. */
export function createAuthHandler(auth: AuthDomain, log: Logger): AuthServiceServer {
  const handlerLog = log.child({ component: "auth" });
  return {
    signUp: unary(handlerLog, "SignUp", async (req) => toGrant(await auth.signUp(req.username, req.password))),
    logIn: unary(handlerLog, "LogIn", async (req) => toGrant(await auth.logIn(req.username, req.password))),
    logOut: unary(handlerLog, "LogOut", async (_req, call) => {
      await auth.logOut(bearerToken(call.metadata));
      return {};
    }),
    whoAmI: unary(handlerLog, "WhoAmI", async (_req, call) => {
      const { user, expiresAt } = await auth.whoAmI(bearerToken(call.metadata));
      return { user: toUser(user), expiresAt };
    }),
  } satisfies AuthServiceServer;
}
