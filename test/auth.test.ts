import { status, type ServiceError } from "@grpc/grpc-js";
import anyTest, { type TestFn } from "ava";
import { ParleyApi } from "../services/client/api.js";
import { newUser, PASSWORD, uniqueName } from "./helpers/clients.js";
import { freshDatabase } from "./helpers/infra.js";
import { startServer, type InProcessServer } from "./helpers/servers.js";

const test = anyTest as TestFn<{ server: InProcessServer }>;

test.before(async (t) => {
  t.context.server = await startServer({ DATABASE_URL: await freshDatabase() });
});
test.after.always(async (t) => {
  await t.context.server?.shutdown();
});

const code = (err: unknown) => (err as ServiceError).code;

test("SignUp returns a 256-bit token, the user and an expiry in the future", async (t) => {
  const api = new ParleyApi(t.context.server.address);
  const username = uniqueName("Sign");
  const grant = await api.signUp(username, PASSWORD);
  t.is(grant.user?.username, username);
  t.truthy(grant.user?.id);
  t.true(Buffer.from(grant.token, "base64url").length >= 32);
  t.true((grant.expiresAt?.getTime() ?? 0) > Date.now());
  t.deepEqual(await api.whoAmI(), grant.user);
});

test("usernames are unique ignoring case, and keep the spelling given", async (t) => {
  const username = uniqueName("Case");
  const first = await newUser(t.context.server.address);
  await first.api.signUp(username, PASSWORD);
  const err = await t.throwsAsync(new ParleyApi(t.context.server.address).signUp(username.toUpperCase(), PASSWORD));
  t.is(code(err), status.ALREADY_EXISTS);
  const login = await new ParleyApi(t.context.server.address).logIn(username.toLowerCase(), PASSWORD);
  t.is(login.user?.username, username);
});

test("SignUp rejects bad usernames and passwords with INVALID_ARGUMENT", async (t) => {
  const api = new ParleyApi(t.context.server.address);
  for (const [username, password] of [
    ["ab", PASSWORD],
    ["x".repeat(33), PASSWORD],
    ["has space", PASSWORD],
    ["emoji😀", PASSWORD],
    [uniqueName(), "short"],
    [uniqueName(), "p".repeat(129)],
  ]) {
    const err = await t.throwsAsync(api.signUp(username, password), undefined, `${username} / ${password.length}`);
    t.is(code(err), status.INVALID_ARGUMENT);
  }
});

test("LogIn gives one UNAUTHENTICATED message for a wrong user and a wrong password", async (t) => {
  const user = await newUser(t.context.server.address);
  const api = new ParleyApi(t.context.server.address);
  const wrongPassword = (await t.throwsAsync(api.logIn(user.username, "not-the-password"))) as ServiceError;
  const wrongUser = (await t.throwsAsync(api.logIn(uniqueName("nobody"), PASSWORD))) as ServiceError;
  t.is(wrongPassword.code, status.UNAUTHENTICATED);
  t.is(wrongUser.code, status.UNAUTHENTICATED);
  t.is(wrongPassword.details, wrongUser.details);
});

test("LogIn opens a second session; LogOut revokes only the caller's token, at once", async (t) => {
  const user = await newUser(t.context.server.address);
  const second = new ParleyApi(t.context.server.address);
  await second.logIn(user.username, PASSWORD);
  const revokedToken = second.token;
  await second.logOut();
  const stale = new ParleyApi(t.context.server.address, revokedToken);
  t.is(code(await t.throwsAsync(stale.whoAmI())), status.UNAUTHENTICATED);
  t.is(code(await t.throwsAsync(stale.logOut())), status.UNAUTHENTICATED);
  t.is((await user.api.whoAmI())?.username, user.username);
});

test("missing, malformed and unknown tokens are UNAUTHENTICATED on every authenticated call", async (t) => {
  for (const token of [undefined, "not-a-token", "A".repeat(43)]) {
    const api = new ParleyApi(t.context.server.address, token);
    t.is(code(await t.throwsAsync(api.whoAmI())), status.UNAUTHENTICATED);
    t.is(code(await t.throwsAsync(api.logOut())), status.UNAUTHENTICATED);
    t.is(code(await t.throwsAsync(api.listConversations())), status.UNAUTHENTICATED);
    t.is(code(await t.throwsAsync(api.listOnlineUsers())), status.UNAUTHENTICATED);
  }
});
