// The operations dashboard at /ops: the whole cluster, live. It asks the
// scaler's OpsService.GetClusterStatus every second over gRPC-web (no log-in:
// the answer holds aggregate figures only) and keeps the last 2 minutes of
// the headline figures for the sparklines.
import type { ComponentChildren } from "preact";
import { useEffect, useState } from "preact/hooks";
import { createOpsClient, errorText } from "../api.js";
import { formatAgo, formatRate, formatSeconds, formatTime, NONE } from "../ops-format.js";
import { addPoint, HISTORY_MS, type OpsPoint } from "../ops-history.js";
import { type OpsView, toView } from "../ops-status.js";
import { sleep } from "../wait.js";
import { DecisionsList } from "./ops-decisions.js";
import { PodsTable } from "./ops-pods.js";
import { Sparkline } from "./sparkline.js";

/** How often the page asks (ms): the issue asks for 2 s or faster. */
const POLL_MS = 1_000;
/** A poll that takes longer than this fails, and the next one starts. */
const CALL_TIMEOUT_MS = 5_000;

/** "last 2 min, peak 6.0" under a sparkline: how far back it reaches and what its top stands for. */
function axis(points: readonly OpsPoint[], pick: (p: OpsPoint) => number | undefined, format: (n: number) => string): string {
  const values = points.map(pick).filter((v): v is number => v !== undefined);
  const reach = points.length > 1 ? Math.round(((points.at(-1)?.at ?? 0) - (points[0]?.at ?? 0)) / 1000) : 0;
  const span = reach >= 120 ? "last 2 min" : `last ${reach} s`;
  return values.length === 0 ? span : `${span}, peak ${format(Math.max(...values))}`;
}

function Stat(props: { title: string; value: string; detail?: ComponentChildren; children?: ComponentChildren }) {
  const id = `stat-${props.title.toLowerCase().replace(/\W+/g, "-")}`;
  return (
    <section class="stat" aria-labelledby={id}>
      <h2 id={id}>{props.title}</h2>
      <p class="value">{props.value}</p>
      {props.detail && <p class="detail">{props.detail}</p>}
      {props.children}
    </section>
  );
}

export function OpsPage() {
  const [view, setView] = useState<OpsView | undefined>();
  const [points, setPoints] = useState<OpsPoint[]>([]);
  const [error, setError] = useState<string | undefined>();

  useEffect(() => {
    const controller = new AbortController();
    const client = createOpsClient();
    void (async () => {
      while (!controller.signal.aborted) {
        try {
          const next = toView(await client.getClusterStatus({}, { signal: controller.signal, timeoutMs: CALL_TIMEOUT_MS }));
          setView(next);
          setPoints((old) =>
            addPoint(old, {
              at: next.generatedAt,
              onlineUsers: next.onlineUsers,
              messagesPerSecond: next.messagesPerSecond,
              p99Seconds: next.p99Seconds,
            }),
          );
          setError(undefined);
        } catch (err) {
          if (!controller.signal.aborted) setError(errorText(err));
        }
        await sleep(POLL_MS, controller.signal);
      }
    })();
    return () => controller.abort();
  }, []);

  const series = (pick: (p: OpsPoint) => number | undefined) => points.map((p) => ({ at: p.at, value: pick(p) }));
  const now = view?.generatedAt ?? Date.now();
  const controller = view?.controller;
  return (
    <div class="ops">
      <header class="top">
        <h1>Parley operations</h1>
        <p role="status" aria-label="Updated" class={`connection ${error ? "" : "online"}`}>
          {error
            ? `Not updating${view ? ` since ${formatTime(view.generatedAt)}` : ""}: ${error}`
            : view
              ? `Live, every ${POLL_MS / 1000} s`
              : "Connecting…"}
        </p>
        <a class="nav" href="/">
          Chat
        </a>
      </header>
      {/* Figures that stopped updating are dimmed, so that they are not taken for live ones. */}
      <main class={`ops-body${error ? " stale" : ""}`}>
        <div class="stats">
          <Stat title="Online users" value={view ? String(view.onlineUsers) : NONE} detail="distinct users with a live stream">
            <Sparkline label="Online users, last 2 minutes" points={series((p) => p.onlineUsers)} spanMs={HISTORY_MS} />
            <p class="axis">{axis(points, (p) => p.onlineUsers, String)}</p>
          </Stat>
          <Stat title="Messages per second" value={view ? formatRate(view.messagesPerSecond) : NONE} detail="committed, over the last 10 s">
            <Sparkline label="Messages per second, last 2 minutes" points={series((p) => p.messagesPerSecond)} spanMs={HISTORY_MS} />
            <p class="axis">{axis(points, (p) => p.messagesPerSecond, formatRate)}</p>
          </Stat>
          <Stat
            title="Send latency"
            value={view ? `p99 ${formatSeconds(view.p99Seconds)}` : NONE}
            detail={view ? `p50 ${formatSeconds(view.p50Seconds)} · ${view.sends} sends in ${Math.round(view.windowSeconds)} s` : undefined}
          >
            <Sparkline label="Send latency p99, last 2 minutes" points={series((p) => p.p99Seconds)} spanMs={HISTORY_MS} floor={0.01} />
            <p class="axis">{axis(points, (p) => p.p99Seconds, formatSeconds)}</p>
          </Stat>
          <Stat
            title="Replicas"
            value={view ? `${view.current} / ${view.desired}` : NONE}
            detail={
              view && (
                <>
                  current / desired (⌈users / {view.usersPerReplica}⌉, 1–10)
                  <br />
                  {controller
                    ? `controller: ${controller.current} → ${controller.replicas}${controller.dryRun ? " (dry run)" : ""}, ${formatAgo(controller.reportedAt, now)}`
                    : "no report from the bundled controller"}
                </>
              )
            }
          />
        </div>
        <section class="panel-box" aria-labelledby="pods-title">
          <h2 id="pods-title">Pods</h2>
          <PodsTable pods={view?.pods ?? []} now={now} />
        </section>
        <section class="panel-box" aria-labelledby="decisions-title">
          <h2 id="decisions-title">Scaling decisions</h2>
          <DecisionsList decisions={view?.decisions ?? []} />
        </section>
      </main>
    </div>
  );
}
