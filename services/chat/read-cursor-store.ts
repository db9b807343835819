import { sql } from "drizzle-orm";
import { queryRows, type Db } from "../db/client.js";
import { READ_CURSOR_FORWARD } from "../db/schema.js";

/**
 * Postgres access for read cursors (`read_cursors`): how far each user has
 * read each conversation, the base of unread counts and of the offline queue.
 * A send moves its sender's cursor in the append statement itself
 * (append-statements.ts), and a join starts it at the group's end (group-store.ts).
 */
export class ReadCursorStore {
  constructor(private readonly db: Db) {}

  /** Moves the read cursor forward only, never past the conversation's last seq; returns where it is (0 when there is no such conversation). */
  async markRead(userId: number, conversationId: string, seq: number): Promise<number> {
    const [row] = await queryRows<{ last_read_seq: string | number }>(
      this.db,
      sql`INSERT INTO read_cursors (user_id, conversation_id, last_read_seq)
          SELECT ${userId}::bigint, c.id, LEAST(${seq}::bigint, c.last_seq) FROM conversations c WHERE c.id = ${conversationId}
          ${sql.raw(READ_CURSOR_FORWARD)}
          RETURNING last_read_seq`,
    );
    return Number(row?.last_read_seq ?? 0);
  }
}
