// The sidebar's other lists: groups (create, find, join, leave) and who is online.
import { useState } from "preact/hooks";
import type { Group } from "../../../../gen/es/parley/chat/v1/chat_pb.js";

export interface GroupsPanelProps {
  find: (query: string) => Promise<Group[]>;
  onCreate: (name: string) => Promise<void>;
  onJoin: (name: string) => Promise<void>;
  onLeave: (name: string) => Promise<void>;
  onError: (err: unknown) => void;
}

export function GroupsPanel(props: GroupsPanelProps) {
  const [name, setName] = useState("");
  const [found, setFound] = useState<Group[] | undefined>();
  const act = async (action: () => Promise<unknown>) => {
    try {
      await action();
      setFound(await props.find(name.trim()));
    } catch (err) {
      props.onError(err);
    }
  };
  return (
    <section class="panel">
      <h2>Groups</h2>
      <form
        class="row wrap"
        onSubmit={(e) => {
          e.preventDefault();
          void act(async () => undefined);
        }}
      >
        <input aria-label="Group name" placeholder="group name" value={name} onInput={(e) => setName(e.currentTarget.value)} />
        <button type="submit" class="secondary">
          Find
        </button>
        <button type="button" disabled={!name.trim()} onClick={() => void act(() => props.onCreate(name.trim()))}>
          Create group
        </button>
      </form>
      {found && (
        <ul aria-label="Groups" class="groups">
          {found.length === 0 && <li class="empty">No groups match.</li>}
          {found.map((g) => (
            <li key={g.name}>
              <span class="title"># {g.name}</span>
              <span class="count">{g.memberCount === 1 ? "1 member" : `${g.memberCount} members`}</span>
              {g.isMember ? (
                <button type="button" class="secondary" onClick={() => void act(() => props.onLeave(g.name))}>
                  Leave
                </button>
              ) : (
                <button type="button" onClick={() => void act(() => props.onJoin(g.name))}>
                  Join
                </button>
              )}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

export function OnlineList(props: { me: string; online: Set<string>; onOpen: (username: string) => void }) {
  const others = [...props.online].filter((u) => u.toLowerCase() !== props.me.toLowerCase()).sort();
  return (
    <section class="panel">
      <h2>Online</h2>
      <ul aria-label="Online" class="online">
        {others.length === 0 && <li class="empty">Nobody else is online.</li>}
        {others.map((u) => (
          <li key={u}>
            <button type="button" onClick={() => props.onOpen(u)}>
              <span class="dot" aria-hidden="true" />
              {u}
            </button>
          </li>
        ))}
      </ul>
    </section>
  );
}
