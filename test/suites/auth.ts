// The contract of AuthService, as a client sees it over real gRPC: sign-up,
// log-in, log-out and what each token may do afterwards.
import { status, type ServiceError } from "@grpc/grpc-js";
import type { SerialFn } from "ava";
import { ParleyApi } from "../../services/client/api.js";
import type { Backend, Deployment, TestServer } from "../helpers/backends.js";
import { newUser, PASSWORD, uniqueName } from "../helpers/clients.js";

/** Registers the auth suite on `test`, against one server of a fresh deployment of `backend`. */
export function authSuite(test: SerialFn, backend: Backend): void {
  let deployment: Deployment | undefined;
  let started: TestServer | undefined;
  const server = () => started as TestServer;

  test.before(async () => {
    deployment = await backend.deploy();
    started = await deployment.start();
  });
  test.after.always(async () => {
    await deployment?.close();
  });

  const code = (err: unknown) => (err as ServiceError).code;

  test(`${backend.name}: SignUp returns a 256-bit token, the user and an expiry in the future`, async (t) => {
    const api = new ParleyApi(server().address);
    const username = uniqueName("Sign");
    const grant = await api.signUp(username, PASSWORD);
    t.is(grant.user?.username, username);
    t.truthy(grant.user?.id);
    t.true(Buffer.from(grant.token, "base64url").length >= 32);
    t.true((grant.expiresAt?.getTime() ?? 0) > Date.now());
    t.deepEqual(await api.whoAmI(), grant.user);
  });

  test(`${backend.name}: usernames are unique ignoring case, and keep the spelling given`, async (t) => {
    const username = uniqueName("Case");
    const first = await newUser(server().address);
    await first.api.signUp(username, PASSWORD);
    const err = await t.throwsAsync(new ParleyApi(server().address).signUp(username.toUpperCase(), PASSWORD));
    t.is(code(err), status.ALREADY_EXISTS);
    const login = await new ParleyApi(server().address).logIn(username.toLowerCase(), PASSWORD);
    t.is(login.user?.username, username);
  });

  test(`${backend.name}: SignUp rejects bad usernames and passwords with INVALID_ARGUMENT`, async (t) => {
    const api = new ParleyApi(server().address);
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

  test(`${backend.name}: LogIn gives one UNAUTHENTICATED message for a wrong user and a wrong password`, async (t) => {
    const user = await newUser(server().address);
    const api = new ParleyApi(server().address);
    const wrongPassword = (await t.throwsAsync(api.logIn(user.username, "not-the-password"))) as ServiceError;
    const wrongUser = (await t.throwsAsync(api.logIn(uniqueName("nobody"), PASSWORD))) as ServiceError;
    t.is(wrongPassword.code, status.UNAUTHENTICATED);
    t.is(wrongUser.code, status.UNAUTHENTICATED);
    t.is(wrongPassword.details, wrongUser.details);
  });

  test(`${backend.name}: LogIn opens a second session; LogOut revokes only the caller's token, at once`, async (t) => {
    const user = await newUser(server().address);
    const second = new ParleyApi(server().address);
    await second.logIn(user.username, PASSWORD);
    const revokedToken = second.token;
    await second.logOut();
    const stale = new ParleyApi(server().address, revokedToken);
    t.is(code(await t.throwsAsync(stale.whoAmI())), status.UNAUTHENTICATED);
    t.is(code(await t.throwsAsync(stale.logOut())), status.UNAUTHENTICATED);
    t.is((await user.api.whoAmI())?.username, user.username);
  });

  test(`${backend.name}: missing, malformed and unknown tokens are UNAUTHENTICATED on every authenticated call`, async (t) => {
    for (const token of [undefined, "not-a-token", "A".repeat(43)]) {
      const api = new ParleyApi(server().address, token);
      t.is(code(await t.throwsAsync(api.whoAmI())), status.UNAUTHENTICATED);
      t.is(code(await t.throwsAsync(api.logOut())), status.UNAUTHENTICATED);
      t.is(code(await t.throwsAsync(api.listConversations())), status.UNAUTHENTICATED);
      t.is(code(await t.throwsAsync(api.listOnlineUsers())), status.UNAUTHENTICATED);
    }
  });
}
