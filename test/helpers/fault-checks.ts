import { status, type ServiceError } from "@grpc/grpc-js";
import type { ExecutionContext } from "ava";
import type { Message } from "../../gen/parley/chat/v1/chat.js";
import { ParleyApi } from "../../services/client/api.js";
import { pollUntil, uniqueName } from "./clients.js";
import { assertIntact, fullHistory, range } from "./history.js";
import { RawStream } from "./raw-stream.js";
import type { SendLoop } from "./send-loop.js";
import type { ChildServer } from "./servers.js";

import { key, LIVE_MS, lastPresence, PRESENCE_MS, REVOKE_MS, TimedStream, type Scene, WAIT_MS } from "./fault-scene.js";

// ---------------------------------------------------------------------------
// Revocation

/**
 * rex's streams that must end with UNAUTHENTICATED once his token is revoked:
 * a Connect that said hello on pod 2, and a Connect that never says hello on
 * each pod (design.md, "Authentication").
 */
export interface RevocationProbe {
  token: string;
  streams: { name: string; pod: ChildServer; stream: TimedStream }[];
}

/** Opens rex's probe streams with `token` (rex is online once it resolves). */
export async function openRevocationProbe(scene: Scene, token = scene.rex.token): Promise<RevocationProbe> {
  const [p1, p2] = scene.pods;
  const helloed = new TimedStream(scene.track(RawStream.connect(p2.address, token).hello()));
  await helloed.raw.until(() => helloed.raw.caughtUp, "rex's stream caught up", WAIT_MS);
  const silent = [p1, p2].map((pod) => ({
    name: `Connect without hello on ${pod.pod}`,
    pod,
    stream: new TimedStream(scene.track(RawStream.connect(pod.address, token))),
  }));
  return { token, streams: [{ name: `Connect after hello on ${p2.pod}`, pod: p2, stream: helloed }, ...silent] };
}

/**
 * LogOut with `token` through `api`, retried while it answers UNAVAILABLE (a
 * dependency down) for up to WAIT_MS; resolves with when the attempt that
 * answered OK was made.
 */
export async function logOut(address: string, token: string): Promise<{ at: number; unavailable: number }> {
  const api = new ParleyApi(address, token);
  let unavailable = 0;
  const deadline = Date.now() + WAIT_MS;
  try {
    for (;;) {
      // The revocation takes effect while LogOut runs (this pod's streams end before it answers): time it from the call.
      const at = Date.now();
      try {
        await api.logOut();
        return { at, unavailable };
      } catch (err) {
        if ((err as ServiceError).code !== status.UNAVAILABLE || Date.now() > deadline) throw err;
        unavailable += 1;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  } finally {
    api.close();
  }
}

/**
 * Asserts that a token revoked at `revokedAt` stopped working: WhoAmI and Send
 * on every pod answer UNAUTHENTICATED within REVOKE_MS and keep doing so, and
 * each probe stream still open when it was revoked ended with UNAUTHENTICATED
 * within REVOKE_MS of `revokedAt` (or of `awakeFrom(pod)`, for a pod that was
 * paused meanwhile). Returns what was observed, for the test's log line.
 */
export async function checkRevoked(
  t: ExecutionContext,
  scene: Scene,
  probe: RevocationProbe,
  revokedAt: number,
  awakeFrom: (pod: ChildServer) => number = () => revokedAt,
  faultEndedAt = revokedAt,
): Promise<string> {
  const notes: string[] = [];
  // Streams first: their clock runs from the revocation, so they are not kept waiting behind the unary polls.
  // A stream the fault itself ended (UNAVAILABLE, so that its client resumes) before the revocation reached it is
  // no longer open; its client's next stream is refused, which the unary and new-Connect checks below cover.
  const endedByFault = (p: RevocationProbe["streams"][number]) =>
    p.stream.endedAt !== undefined && p.stream.raw.status?.code === status.UNAVAILABLE && p.stream.endedAt <= faultEndedAt;
  const open = probe.streams.filter((p) => (p.stream.endedAt === undefined || p.stream.endedAt >= revokedAt) && !endedByFault(p));
  for (const p of probe.streams.filter((x) => !open.includes(x))) {
    notes.push(`${p.name}: had ended ${status[p.stream.raw.status?.code ?? -1]} by the fault`);
    t.is(p.stream.raw.status?.code, status.UNAVAILABLE, `${p.name}: a stream ended by the fault ends UNAVAILABLE`);
  }
  await Promise.all(
    open.map((p) => {
      const deadline = Math.max(revokedAt, awakeFrom(p.pod)) + REVOKE_MS;
      return p.stream.raw
        .until(() => p.stream.raw.status !== undefined, `${p.name} to end`, Math.max(0, deadline - Date.now()) + 250)
        .catch(() => undefined);
    }),
  );
  for (const p of open) {
    const deadline = Math.max(revokedAt, awakeFrom(p.pod)) + REVOKE_MS;
    const s = p.stream.raw.status;
    const endedMs = p.stream.endedAt === undefined ? undefined : p.stream.endedAt - revokedAt;
    notes.push(`${p.name}: ${s === undefined ? "still open" : `${status[s.code]} after ${endedMs} ms`}`);
    t.is(s?.code, status.UNAUTHENTICATED, `${p.name} ends UNAUTHENTICATED once the token is revoked (${JSON.stringify(s)})`);
    if (p.stream.endedAt !== undefined) t.true(p.stream.endedAt <= deadline, `${p.name} ended within ${REVOKE_MS} ms`);
    const ready = p.stream.raw.frames.findIndex((f) => f.ready);
    if (p.name.includes("without hello")) t.is(ready, -1, `${p.name}: no ready frame`);
  }
  // Unary calls on every pod: refused by REVOKE_MS after the revocation, and from then on.
  await Promise.all(
    scene.pods.map(async (pod) => {
      const api = new ParleyApi(pod.address, probe.token, 3_000);
      try {
        const codeOf = async (call: () => Promise<unknown>) => {
          try {
            await call();
            return status.OK;
          } catch (err) {
            return (err as ServiceError).code;
          }
        };
        const deadline = Math.max(revokedAt, awakeFrom(pod)) + REVOKE_MS;
        let whoAmI = await codeOf(() => api.whoAmI());
        while (whoAmI !== status.UNAUTHENTICATED && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 200));
          whoAmI = await codeOf(() => api.whoAmI());
        }
        notes.push(`WhoAmI on ${pod.pod}: ${status[whoAmI]} at ${Date.now() - revokedAt} ms`);
        t.is(whoAmI, status.UNAUTHENTICATED, `WhoAmI on ${pod.pod} with the revoked token`);
        const sendCode = await codeOf(() => api.send({ username: scene.ana.username }, "from a revoked session", uniqueName("rv")));
        t.is(sendCode, status.UNAUTHENTICATED, `Send on ${pod.pod} with the revoked token`);
        const fresh = RawStream.connect(pod.address, probe.token).hello();
        await fresh.until(() => fresh.status !== undefined, `a new Connect on ${pod.pod} to be refused`, 5_000).catch(() => undefined);
        fresh.close();
        t.is(fresh.status?.code, status.UNAUTHENTICATED, `a new Connect on ${pod.pod} with the revoked token`);
        t.false(
          fresh.frames.some((f) => f.ready),
          `a new Connect on ${pod.pod} gets no ready`,
        );
      } finally {
        api.close();
      }
    }),
  );
  return notes.join("; ");
}

// ---------------------------------------------------------------------------
// Delivery

/**
 * Sends every refused send of `loops` again with its client_msg_id (as a
 * client would once things settle) and records each as committed. Asserts
 * that every refusal was UNAVAILABLE, never INTERNAL or anything else.
 */
export async function retryRefused(t: ExecutionContext, scene: Scene, loops: SendLoop[]): Promise<number> {
  const refused = loops.flatMap((l) => l.refused);
  t.deepEqual(
    refused.filter((r) => r.code !== status.UNAVAILABLE).map((r) => `${r.clientMsgId}: ${status[r.code] ?? r.code} ${r.details}`),
    [],
    "a send without an ack is answered UNAVAILABLE (retryable), nothing else",
  );
  for (const r of refused) await scene.send(r.body, r.clientMsgId);
  return refused.length;
}

/**
 * What every fault test ends with, for the DM of ana and ben:
 * - history has no gap and holds each (sender, client_msg_id) once, and every
 *   acknowledged send with the seq and body it was acknowledged with;
 * - ben's reconnecting client got all of it, once each, in order;
 * - ben's raw stream got each message committed after it caught up within
 *   LIVE_MS of the commit, once, in order, or it was ended UNAVAILABLE by then.
 * Returns a summary for the log.
 */
export async function checkDelivery(t: ExecutionContext, scene: Scene, conversationId = scene.dm): Promise<string> {
  const history = await fullHistory(scene.anaApi, conversationId);
  const stored = assertIntact(t, history);
  const mine = scene.acked.filter((a) => a.message.conversationId === conversationId);
  t.deepEqual(
    mine.filter(({ message: m }) => stored.get(m.id)?.seq !== m.seq || stored.get(m.id)?.body !== m.body).map((a) => brief(a.message)),
    [],
    "every acknowledged send is stored as acknowledged",
  );
  // When each message was surely committed: its earliest ack (a retry returns the original).
  const by = new Map<number, number>();
  for (const a of mine) by.set(a.message.seq, Math.min(by.get(a.message.seq) ?? Infinity, a.by));
  t.deepEqual(history.filter((m) => !by.has(m.seq)).map(brief), [], "nothing is stored that no ack returned");

  // The reconnecting client: everything, once, in order.
  const benIn = scene.benW.inbox;
  const got = () => benIn.messages.filter((m) => m.conversationId === conversationId);
  await benIn.until(() => got().some((m) => m.seq === history.length), "ben's client has everything", 15_000).catch(() => undefined);
  t.deepEqual(got().map(brief), history.map(brief), "ben's reconnecting client got every message once, in order");

  // The raw stream: live within LIVE_MS, or ended UNAVAILABLE in time.
  const raw = scene.benRaw;
  const replayedTo = Math.max(
    0,
    ...raw.raw
      .replayed()
      .filter((m) => m.conversationId === conversationId)
      .map((m) => m.seq),
  );
  const due = history.filter((m) => m.seq > replayedTo).map((m) => ({ m, deadline: (by.get(m.seq) ?? Date.now()) + LIVE_MS }));
  const settled = (d: (typeof due)[number]) =>
    raw.arrivals.has(key(d.m)) || (raw.endedAt !== undefined && raw.endedAt <= d.deadline) || Date.now() > d.deadline;
  const lastDeadline = Math.max(0, ...due.map((d) => d.deadline));
  await pollUntil(() => due.every(settled), "ben's raw stream to settle", Math.max(0, lastDeadline - Date.now()) + 500, 50).catch(() => undefined);
  const late = due.filter((d) => {
    const at = raw.arrivals.get(key(d.m));
    if (at !== undefined && at <= d.deadline) return false;
    return !(raw.endedAt !== undefined && raw.endedAt <= d.deadline);
  });
  t.deepEqual(
    late.map(
      (d) =>
        `seq ${d.m.seq}: ${raw.arrivals.has(key(d.m)) ? `came ${(raw.arrivals.get(key(d.m)) as number) - d.deadline + LIVE_MS} ms after its commit` : "never came"}`,
    ),
    [],
    `ben's open raw stream gets each committed message within ${LIVE_MS} ms (stream ${raw.raw.status ? `ended ${status[raw.raw.status.code]}` : "still open"})`,
  );
  if (raw.endedAt !== undefined) t.is(raw.raw.status?.code, status.UNAVAILABLE, "ben's raw stream, if ended, ends UNAVAILABLE");
  const seqs = raw.raw.messages(conversationId).map((m) => m.seq);
  t.deepEqual(seqs, range(seqs[0] ?? 1, (seqs[0] ?? 1) + seqs.length - 1), "ben's raw stream: once each, in order, no gap");

  const lags = due.map((d) => (raw.arrivals.get(key(d.m)) ?? NaN) - (d.deadline - LIVE_MS)).filter((x) => !Number.isNaN(x));
  return (
    `${history.length} messages; ben's raw stream ${raw.raw.status ? `ended ${status[raw.raw.status.code]}` : "open"}, ` +
    `got ${lags.length}/${due.length} live (worst ${lags.length ? Math.max(...lags) : "-"} ms after the ack); ` +
    `ben's client reconnected ${scene.benW.disconnects.length}×`
  );
}

// ---------------------------------------------------------------------------
// Presence

/**
 * Waits, up to `timeoutMs`, until ListOnlineUsers on every pod and the last
 * presence frame ana's client got about each of `usernames` agree; asserts it
 * and returns how long it took (ms). A user of whom ana never got a frame
 * counts as offline to her.
 */
export async function checkPresence(t: ExecutionContext, scene: Scene, usernames: string[], timeoutMs = PRESENCE_MS): Promise<number> {
  const start = Date.now();
  const apis = scene.pods.map((pod) => new ParleyApi(pod.address, scene.ben.token, 3_000));
  let last = "";
  try {
    for (;;) {
      const lists = await Promise.all(apis.map((api) => api.listOnlineUsers().catch((err: ServiceError) => [`error ${err.code}`])));
      const listed = usernames.map((u) => lists.map((l) => l.includes(u)));
      const told = usernames.map((u) => lastPresence(scene.anaW, u) ?? false);
      last = usernames.map((u, i) => `${u}: listed ${JSON.stringify(listed[i])}, ana told ${told[i]}`).join("; ");
      if (listed.every((perPod, i) => perPod.every((x) => x === told[i]))) break;
      if (Date.now() - start > timeoutMs) {
        t.fail(`presence frames and ListOnlineUsers still disagree after ${timeoutMs} ms: ${last}`);
        return Date.now() - start;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    for (const api of apis) api.close();
  }
  t.pass();
  return Date.now() - start;
}

/** What the pods logged at error level or above (pino levels 50, 60). */
export function errorLines(pods: ChildServer[]): string[] {
  return pods.flatMap((pod) => pod.logs.filter((line) => /"level":(5|6)\d/.test(line)).map((line) => `${pod.pod}: ${line.slice(0, 300)}`));
}

export const brief = (m: Message) => ({ seq: m.seq, sender: m.sender, body: m.body });
