import { type ConversationKindName, READ_CURSOR_FORWARD } from "../db/schema.js";

// The SQL of a send. Each kind of conversation takes its seqs its own way
// (SeqSource); every append inserts the messages and moves the sender's read
// cursor in the same statement, so that all of it commits together or not at
// all and the seq counter never skips.

/** How an append takes its seqs: `$conv` is the conversation id, `$sender` the sender's id, `$n` how many messages. */
type SeqSource = (p: { conv: string; sender: string; n: string }) => string;

/** Broadcast: the conversation exists from the first migration. */
const existing: SeqSource = ({ conv, n }) => `
    UPDATE conversations SET last_seq = last_seq + ${n}, last_message_at = now()
    WHERE id = ${conv}
    RETURNING last_seq`;

/** A group: only while the sender is a member; no row (and so no message) otherwise. */
const asMember: SeqSource = ({ conv, sender, n }) => `
    UPDATE conversations SET last_seq = last_seq + ${n}, last_message_at = now()
    WHERE id = ${conv} AND EXISTS (
      SELECT 1 FROM group_members gm JOIN groups g ON g.id = gm.group_id
      WHERE g.conversation_id = ${conv} AND gm.user_id = ${sender})
    RETURNING last_seq`;

/**
 * A DM: its first message creates the conversation in the same statement, so
 * a send that fails leaves no empty DM behind. The ids of the pair come from
 * the conversation id, `dm:<low user id>:<high user id>`.
 */
const upsertDirect: SeqSource = ({ conv, n }) => `
    INSERT INTO conversations (id, kind, user_a, user_b, last_seq, last_message_at)
    VALUES (${conv}, 'direct', split_part(${conv}, ':', 2)::bigint, split_part(${conv}, ':', 3)::bigint, ${n}, now())
    ON CONFLICT (id) DO UPDATE
      SET last_seq = conversations.last_seq + EXCLUDED.last_seq, last_message_at = EXCLUDED.last_message_at
    RETURNING last_seq`;

/**
 * The sender has read up to their own newest message (an implicit receipt):
 * the read cursor moves there in the same statement, never backwards.
 */
const readOwn = ({ conv, sender }: { conv: string; sender: string }) => `
  r AS (
    INSERT INTO read_cursors (user_id, conversation_id, last_read_seq)
    SELECT ${sender}, ${conv}, c.last_seq FROM c
    ${READ_CURSOR_FORWARD}
  )`;

/**
 * N messages of one sender in one statement (a single send is a batch of
 * one), seqs last_seq-N+1 … last_seq in array order, and the sender's read
 * cursor moved to the last of them.
 * $1 conversation, $2 N, $3 sender id, $4 sender name, $5 to_kind, $6 to_name, $7 bodies, $8 client_msg_ids.
 */
const appendStatement = (seqs: SeqSource) => {
  const p = { conv: "$1::text", sender: "$3::bigint", n: "$2::int" };
  return `
  WITH c AS (${seqs(p)}
  ),
  m AS (
    INSERT INTO messages (conversation_id, seq, sender_id, sender_name, to_kind, to_name, body, client_msg_id)
    SELECT $1::text, c.last_seq - $2::int + v.ord, $3::bigint, $4::text, $5::text, $6::text, v.body, v.client_msg_id
    FROM c, unnest($7::text[], $8::text[]) WITH ORDINALITY AS v(body, client_msg_id, ord)
    RETURNING id, seq, sent_at, client_msg_id
  ),${readOwn(p)}
  SELECT id, seq, sent_at, client_msg_id FROM m`;
};

/** The append statement of each kind of conversation, by the name it is prepared under. */
export const APPEND: Record<ConversationKindName, { name: string; text: string }> = {
  direct: { name: "parley_append_direct", text: appendStatement(upsertDirect) },
  group: { name: "parley_append_group", text: appendStatement(asMember) },
  broadcast: { name: "parley_append_broadcast", text: appendStatement(existing) },
};
