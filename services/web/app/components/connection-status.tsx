// The `Connection` status: online, connecting, or reconnecting (and why, and when).
import type { ConnectionState } from "../store.js";

export function ConnectionStatus(props: { state: ConnectionState }) {
  const { state } = props;
  const text =
    state.kind === "online"
      ? "Online"
      : state.kind === "connecting"
        ? "Connecting…"
        : `Reconnecting${state.inMs >= 1000 ? ` in ${Math.round(state.inMs / 1000)} s` : ""}… (${state.reason})`;
  return (
    <p role="status" aria-label="Connection" class={`connection ${state.kind}`}>
      {text}
    </p>
  );
}
