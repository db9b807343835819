import { sql } from "drizzle-orm";
import { bigintArray, queryRows, type Db } from "../db/client.js";
import type { ConversationKindName } from "../db/schema.js";
import { BROADCAST_ID } from "./conversation-ids.js";

/** One conversation a user takes part in, as Postgres has it now. */
export interface LivePosition {
  /** Undefined for broadcast, which every user follows. */
  userId: number | undefined;
  conversationId: string;
  kind: ConversationKindName;
  lastSeq: number;
  /** The user's read cursor; only read for groups (where a stream that missed the join starts). */
  lastReadSeq: number;
}

/**
 * Every DM and group of `userIds`, and broadcast, with their last seq: what
 * the stream reconciler compares this pod's streams against. One statement
 * for the whole pod.
 */
export async function livePositions(db: Db, userIds: number[]): Promise<LivePosition[]> {
  const users = bigintArray(userIds);
  const rows = await queryRows<{
    user_id: string | number | null;
    id: string;
    kind: ConversationKindName;
    last_seq: string | number;
    last_read_seq: string | number;
  }>(
    db,
    sql`WITH u AS (SELECT DISTINCT unnest(${users}::bigint[]) AS user_id)
        SELECT u.user_id, c.id, c.kind, c.last_seq, 0 AS last_read_seq
        FROM u JOIN conversations c ON c.kind = 'direct' AND (c.user_a = u.user_id OR c.user_b = u.user_id)
        UNION ALL
        SELECT u.user_id, c.id, c.kind, c.last_seq, COALESCE(rc.last_read_seq, c.last_seq)
        FROM u
        JOIN group_members gm ON gm.user_id = u.user_id
        JOIN groups g ON g.id = gm.group_id
        JOIN conversations c ON c.id = g.conversation_id
        LEFT JOIN read_cursors rc ON rc.user_id = u.user_id AND rc.conversation_id = c.id
        UNION ALL
        SELECT NULL, c.id, c.kind, c.last_seq, 0 FROM conversations c WHERE c.id = ${BROADCAST_ID}`,
  );
  return rows.map((r) => ({
    userId: r.user_id === null ? undefined : Number(r.user_id),
    conversationId: r.id,
    kind: r.kind,
    lastSeq: Number(r.last_seq),
    lastReadSeq: Number(r.last_read_seq),
  }));
}
