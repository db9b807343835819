// The `Pods` table: one row per pod with a live report.
import { formatAgo, formatBytes, formatRate } from "../ops-format.js";
import type { PodRow } from "../ops-status.js";

export function PodsTable(props: { pods: PodRow[]; now: number }) {
  return (
    <table class="pods" aria-label="Pods">
      <thead>
        <tr>
          <th scope="col">Pod</th>
          <th scope="col">Services</th>
          <th scope="col">Status</th>
          <th scope="col" class="num">
            Streams
          </th>
          <th scope="col" class="num">
            Messages/s
          </th>
          <th scope="col">Postgres</th>
          <th scope="col">Redis</th>
          <th scope="col" class="num">
            Memory
          </th>
          <th scope="col">Reported</th>
        </tr>
      </thead>
      <tbody>
        {props.pods.length === 0 && (
          <tr>
            <td colSpan={9} class="empty">
              No pod has reported yet.
            </td>
          </tr>
        )}
        {props.pods.map((pod) => (
          <tr key={pod.name}>
            <th scope="row">{pod.name}</th>
            <td>{pod.services.join(", ")}</td>
            <td>
              <span class={`pill ${pod.state}`}>{pod.state}</span>
            </td>
            <td class="num">{pod.streams}</td>
            <td class="num">{formatRate(pod.messagesPerSecond)}</td>
            <td>
              <span class={`dep ${pod.postgres.replace(" ", "-")}`}>{pod.postgres}</span>
            </td>
            <td>
              <span class={`dep ${pod.redis.replace(" ", "-")}`}>{pod.redis}</span>
            </td>
            <td class="num">{formatBytes(pod.rssBytes)}</td>
            <td>{formatAgo(pod.reportedAt, props.now)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
