import { READ_CURSOR_FORWARD } from "../db/schema.js";

/**
 * The SQL of a send: one statement appends a batch of messages from any
 * senders to any conversations (a single send is a batch of one), so that a
 * busy pod commits many sends with one transaction and one WAL flush.
 *
 * In that one statement, for every message that may be stored (a DM, the
 * broadcast, or a group the sender is a member of):
 * - each conversation's `last_seq` moves by its number of messages, and a
 *   DM's first message creates the conversation (so a failed send leaves no
 *   empty DM behind);
 * - the messages take consecutive seqs in array order within each
 *   conversation, so one sender's messages keep the order they were sent in;
 * - each sender's read cursor moves to their newest message there, never
 *   backwards (an implicit receipt, as Matrix's).
 * All of it commits together or not at all, so the seq counter never skips.
 *
 * Conversation rows are locked in id order (then read cursors in
 * (user, conversation) order), so that two pods' statements over overlapping
 * conversations wait for each other instead of deadlocking.
 *
 * Parameters, one array element per message: $1 conversation ids, $2 sender
 * ids, $3 sender names, $4 to_kind, $5 to_name, $6 bodies, $7 client_msg_ids.
 * Returns one row per stored message; a message with no row was not stored
 * (its sender is not a member of the group). A `(sender, client_msg_id)`
 * stored before fails the whole statement on its unique index; the store
 * tries again without it (message-store.ts, appendMany). (Skipping such ids here with a NOT
 * EXISTS on messages was tried: the generic plan cached while the table was
 * small scanned all of messages, 38 ms a send at 100 000 rows.)
 */
export const APPEND_BATCH = {
  name: "parley_append_batch",
  text: `
  WITH v AS (
    SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[])
      WITH ORDINALITY AS v(conv, sender_id, sender_name, to_kind, to_name, body, client_msg_id, ord)
  ),
  ok AS (
    SELECT v.* FROM v
    WHERE v.to_kind <> 'group' OR EXISTS (
      SELECT 1 FROM group_members gm JOIN groups g ON g.id = gm.group_id
      WHERE g.conversation_id = v.conv AND gm.user_id = v.sender_id)
  ),
  n AS (
    SELECT conv, min(to_kind) AS kind, count(*) AS n FROM ok GROUP BY conv
  ),
  c AS (
    INSERT INTO conversations AS cv (id, kind, user_a, user_b, last_seq, last_message_at)
    SELECT conv, kind,
      CASE WHEN kind = 'direct' THEN split_part(conv, ':', 2)::bigint END,
      CASE WHEN kind = 'direct' THEN split_part(conv, ':', 3)::bigint END,
      n, now()
    FROM n ORDER BY conv
    ON CONFLICT (id) DO UPDATE SET last_seq = cv.last_seq + EXCLUDED.last_seq, last_message_at = EXCLUDED.last_message_at
    RETURNING cv.id, cv.last_seq
  ),
  s AS (
    SELECT ok.*, c.last_seq - n.n + row_number() OVER (PARTITION BY ok.conv ORDER BY ok.ord) AS seq
    FROM ok JOIN n ON n.conv = ok.conv JOIN c ON c.id = ok.conv
  ),
  m AS (
    INSERT INTO messages (conversation_id, seq, sender_id, sender_name, to_kind, to_name, body, client_msg_id)
    SELECT conv, seq, sender_id, sender_name, to_kind, to_name, body, client_msg_id FROM s ORDER BY conv, seq
    RETURNING id, seq, sent_at, sender_id, client_msg_id
  ),
  r AS (
    INSERT INTO read_cursors (user_id, conversation_id, last_read_seq)
    SELECT sender_id, conv, max(seq) FROM s GROUP BY sender_id, conv ORDER BY sender_id, conv
    ${READ_CURSOR_FORWARD}
  )
  SELECT id, seq, sent_at, sender_id, client_msg_id FROM m`,
};
