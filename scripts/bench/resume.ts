// The resume scenario: receivers live on backend 1 (with backend 2 as their
// failover), a sender on backend 2 keeps sending to their group; backend 1
// gets SIGTERM. Parley drains (each stream gets `drain`), its clients move to
// pod 2 and resume from their cursors: every message sent meanwhile must
// arrive, once. Socket.IO has nothing to resume from: its clients reconnect
// and join their rooms again, and what was sent meanwhile is lost.
import type { Backend } from "./setup.js";
import { sleep, type System } from "./session.js";
import { DeliveryTracker, encodeBody, openLoop, type Endpoint, type Population, type SystemName } from "./workload.js";

export interface ResumeOptions {
  /** Messages per second from the sender. */
  rate: number;
  /** Sending before the SIGTERM. */
  leadMs: number;
  /** Sending goes on this long after the last receiver is back... */
  tailMs: number;
  /** ...or stops at this bound if some never come back. */
  maxMs: number;
  drainMs: number;
  bodyBytes: number;
  tag: string;
  /** Starts the stopped backend again. */
  restart?: (backend: Backend) => Promise<void>;
}

export interface ResumeResult {
  system: SystemName;
  receivers: number;
  /** Receivers that were live again, and where. */
  resumed: number;
  resumedOn: Record<string, number>;
  /** From SIGTERM to each receiver being live again (Parley: caught up), ms. */
  resumeMsP50: number;
  resumeMsMax: number;
  /** From SIGTERM until every receiver had every message sent between the SIGTERM and the last resume, ms. */
  allReceivedMs: number;
  /** From SIGTERM to the process's exit, ms. */
  exitMs: number;
  sent: number;
  acked: number;
  unacked: number;
  /** Messages sent while the receivers were away (between SIGTERM and the last resume). */
  sentDuringOutage: number;
  lost: number;
  duplicates: number;
}

export async function runResume(
  system: System & { backends: Backend[] },
  population: Pick<Population, "names" | "resumeGroup">,
  options: ResumeOptions,
): Promise<ResumeResult> {
  const [victim, survivor] = system.backends;
  const members = population.resumeGroup.members;
  const receivers = members.slice(0, -1);
  const sender = members[members.length - 1];
  const endpoint = (b: Backend): Endpoint => ({ name: b.name, address: b.address });
  const route = (user: number) => (user === sender ? [endpoint(survivor)] : [endpoint(victim), endpoint(survivor)]);

  const tracker = new DeliveryTracker(options.tag, population.names.length);
  const firstAt = new Map<number, number>();
  const sentAt: number[] = [];
  const resumedAt = new Map<number, number>();
  const resumedOn: Record<string, number> = {};
  system.driver.onMessage((receiver, body) => {
    const now = performance.now();
    tracker.receive(receiver, body, now);
    const k = Number(body.split("|", 2)[1]);
    const key = k * population.names.length + receiver;
    if (body.startsWith(`${options.tag}|`) && !firstAt.has(key)) firstAt.set(key, now);
  });
  system.driver.onResumed((user, where) => {
    if (!receivers.includes(user) || resumedAt.has(user)) return;
    resumedAt.set(user, performance.now());
    resumedOn[where] = (resumedOn[where] ?? 0) + 1;
  });

  await system.driver.connect(members, route);
  let killedAt = 0;
  let exitedAt = 0;
  try {
    const stop = new AbortController();
    const killTimer = setTimeout(() => {
      killedAt = performance.now();
      void victim.process.exited.then(() => (exitedAt = performance.now()));
      // SIGTERM starts Parley's drain; SIGKILL follows only if the process is still there after 30 s.
      void victim.process.stop("SIGTERM", 30_000);
    }, options.leadMs);
    const watcher = setInterval(() => {
      if (killedAt === 0) return;
      const now = performance.now();
      const last = resumedAt.size === receivers.length ? Math.max(...resumedAt.values()) : 0;
      if ((last > 0 && now - last >= options.tailMs) || now - killedAt > options.maxMs) stop.abort();
    }, 20);
    const group = population.resumeGroup.name;
    const window = await openLoop({
      rate: options.rate,
      durationMs: options.leadMs + options.maxMs + options.tailMs,
      signal: stop.signal,
      send: (k, intendedAt) => {
        sentAt[k] = intendedAt;
        tracker.sending(k, { from: sender, to: { group }, recipients: members }, intendedAt);
        system.driver.send(sender, { group }, encodeBody(options.tag, k, intendedAt, options.bodyBytes), `${options.tag}-${k}`).then(
          () => tracker.ack(k),
          () => tracker.fail(),
        );
      },
    });
    clearTimeout(killTimer);
    clearInterval(watcher);
    const deadline = window.end + options.drainMs;
    while (!tracker.complete && performance.now() < deadline) await sleep(20);
    const counts = tracker.result(performance.now() - window.end);

    const lastResume = resumedAt.size > 0 ? Math.max(...resumedAt.values()) : performance.now();
    let allReceived = 0;
    let duringOutage = 0;
    for (let k = 0; k < sentAt.length; k++) {
      if (sentAt[k] < killedAt || sentAt[k] > lastResume) continue;
      duringOutage += 1;
      for (const r of receivers) {
        const at = firstAt.get(k * population.names.length + r);
        allReceived = Math.max(allReceived, at === undefined ? Infinity : at);
      }
    }
    await victim.process.exited;
    const resumeTimes = [...resumedAt.values()].map((t) => t - killedAt).sort((a, b) => a - b);
    return {
      system: system.name,
      receivers: receivers.length,
      resumed: resumedAt.size,
      resumedOn,
      resumeMsP50: resumeTimes.length ? resumeTimes[Math.floor((resumeTimes.length - 1) / 2)] : NaN,
      resumeMsMax: resumeTimes.length === receivers.length ? resumeTimes[resumeTimes.length - 1] : Infinity,
      allReceivedMs: duringOutage === 0 ? 0 : allReceived - killedAt,
      exitMs: (exitedAt || performance.now()) - killedAt,
      sent: counts.scheduled,
      acked: counts.acked,
      unacked: counts.unacked,
      sentDuringOutage: duringOutage,
      lost: counts.lost,
      duplicates: counts.duplicates,
    };
  } finally {
    await system.driver.disconnect();
    if (options.restart) await options.restart(victim);
  }
}
