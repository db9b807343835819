/**
 * Every Redis key and pub/sub channel name Parley uses, in one place. The
 * in-memory bus uses the same channel names, so routing reads the same in
 * both modes.
 */
const PREFIX = "parley";

/** Events for one user: their DMs, presence of their peers, typing, membership changes. */
export const userChannel = (userId: number) => `${PREFIX}:user:${userId}`;

/** Events for one group or the broadcast conversation. */
export const conversationChannel = (conversationId: string) => `${PREFIX}:conv:${conversationId}`;
