// The `Scaling decisions` list: the controller's recent decisions, newest first, with its reasons.
import { formatTime } from "../ops-format.js";
import type { DecisionRow } from "../ops-status.js";

export function DecisionsList(props: { decisions: DecisionRow[] }) {
  if (props.decisions.length === 0) {
    return <p class="empty">No scaling decision yet: the bundled controller reports here (KEDA does not).</p>;
  }
  return (
    <ol class="decisions" aria-label="Scaling decisions">
      {props.decisions.map((d) => (
        <li key={`${d.at}-${d.from}-${d.to}`}>
          <time dateTime={new Date(d.at).toISOString()}>{formatTime(d.at)}</time>
          <span class={`pill ${d.action}`}>{d.action}</span>
          <span class="change">
            {d.from} → {d.to}
            {d.dryRun && " (dry run)"}
          </span>
          <span class="reason">{d.reason}</span>
        </li>
      ))}
    </ol>
  );
}
