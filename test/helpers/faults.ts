import type { ExecutionContext } from "ava";
import { pollUntil } from "./clients.js";
import type { SendLoop } from "./send-loop.js";
import { spawnServer, stopPod, type ChildServer } from "./servers.js";

import { checkDelivery, checkPresence, checkRevoked, logOut, openRevocationProbe, retryRefused } from "./fault-checks.js";
import { lastPresence, WAIT_MS, type Scene } from "./fault-scene.js";

export * from "./fault-checks.js";
export * from "./fault-scene.js";

// ---------------------------------------------------------------------------
// One fault, start to end

export interface Fault {
  /** Breaks something; resolves once it is broken. */
  inject(): Promise<void>;
  /** What a client does at the moment of the fault (a send, a join), concurrently with `inject`'s end. */
  atOnce?(): Promise<unknown>;
  /** How long the fault lasts before `repair`, in ms. Default 0. */
  holdMs?: number;
  /** Ends the fault early when it resolves (before holdMs). */
  holdUntil?(): Promise<unknown>;
  /** Repairs it; resolves once repaired. */
  repair(): Promise<void>;
  /** After the repair and before rex's revocation ("after") or the final checks. */
  afterRepair?(): Promise<unknown>;
  /** When rex's token is revoked: "during" the fault (default) or "after" the repair. */
  revoke?: "during" | "after";
  /** Open rex's probe streams after the repair instead of before the fault (when the fault ends them anyway). */
  probeAfterRepair?: boolean;
  /** When a pod could act again (a paused one: when it was resumed). Default: always. */
  awakeFrom?(pod: ChildServer): number;
  /** Conversations besides ana's DM with ben whose delivery to ben is checked. */
  alsoCheck?(): string[];
}

/** What happened, for the test's own assertions and its log line. */
export interface FaultResult {
  injectedAt: number;
  repairedAt: number;
  revokedAt: number;
  loop: SendLoop;
  notes: string[];
}

/**
 * Runs one fault under traffic and asserts the common contract: ana's steady
 * DMs to ben through pod 1 (UNAVAILABLE or acknowledged; every refusal retried
 * with its id ends stored once), delivery to ben (checkDelivery), rex's
 * revocation (checkRevoked) and presence agreement for ben and rex
 * (checkPresence). The test adds what is particular to its fault.
 */
export async function runFault(t: ExecutionContext, scene: Scene, fault: Fault): Promise<FaultResult> {
  const notes: string[] = [];
  // Logged as they come, so that a test that fails half-way still shows what it observed.
  const note = (line: string) => {
    notes.push(line);
    t.log(line);
  };
  const p1 = scene.pods[0];
  let probe = fault.probeAfterRepair ? undefined : await openRevocationProbe(scene);
  if (probe) await scene.anaW.inbox.until(() => lastPresence(scene.anaW, scene.rex.username) === true, "ana sees rex online", WAIT_MS);
  const loop = scene.loop("ana");
  scene.cleanup(() => loop.stop()); // a test that throws half-way must not leave it sending
  await pollUntil(() => loop.acked.length >= 3, "traffic before the fault", WAIT_MS);

  const injectedAt = Date.now();
  await fault.inject();
  let revokedAt = Number.NaN;
  const during: Promise<unknown>[] = [fault.atOnce?.() ?? Promise.resolve()];
  if ((fault.revoke ?? "during") === "during" && probe) {
    during.push(
      logOut(p1.address, probe.token).then(({ at, unavailable }) => {
        revokedAt = at;
        note(`LogOut during the fault answered OK after ${unavailable} UNAVAILABLE`);
      }),
    );
  }
  // The repair does not wait for what clients do meanwhile: a call may hang until it is repaired.
  const clients = Promise.allSettled(during);
  const hold = new Promise((r) => setTimeout(r, fault.holdMs ?? 0));
  await (fault.holdUntil ? Promise.race([hold, fault.holdUntil()]) : hold);
  await fault.repair();
  const repairedAt = Date.now();
  for (const outcome of await clients) if (outcome.status === "rejected") t.fail(`a call made during the fault failed: ${String(outcome.reason)}`);
  note(`fault lasted ${repairedAt - injectedAt} ms`);
  await fault.afterRepair?.();

  if (probe === undefined) {
    probe = await openRevocationProbe(scene);
    await scene.anaW.inbox.until(() => lastPresence(scene.anaW, scene.rex.username) === true, "ana sees rex online", WAIT_MS);
  }
  if (Number.isNaN(revokedAt)) revokedAt = (await logOut(p1.address, probe.token)).at;

  await pollUntil(() => loop.ackedSince(repairedAt) >= 5, "sends after the repair", WAIT_MS);
  await loop.stop();
  const retried = await retryRefused(t, scene, [loop]);
  note(`${loop.acked.length} sends acked, ${retried} refused and retried`);

  note(`revocation: ${await checkRevoked(t, scene, probe, revokedAt, fault.awakeFrom, repairedAt)}`);
  for (const conversationId of [scene.dm, ...(fault.alsoCheck?.() ?? [])]) note(await checkDelivery(t, scene, conversationId));
  const presenceMs = await checkPresence(t, scene, [scene.ben.username, scene.rex.username]);
  note(`presence agreed ${presenceMs} ms after the checks began (${Date.now() - revokedAt} ms after the revocation)`);
  return { injectedAt, repairedAt, revokedAt, loop, notes };
}

export { spawnServer, stopPod };
