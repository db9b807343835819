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

/** Revoked session ids, so that every pod ends the streams opened with them. */
export const revocationChannel = `${PREFIX}:revocations`;

/** A verified token, by its hash: the session as JSON, or "revoked". */
export const sessionKey = (tokenHash: string) => `${PREFIX}:session:${tokenHash}`;

/** Sorted set of live pods, scored by the time (ms) their heartbeat lapses. */
export const presencePodsKey = `${PREFIX}:presence:pods`;

/** Hash of one pod's users ("id:username") to their open stream count on that pod. */
export const presencePodPrefix = `${PREFIX}:presence:pod:`;
export const presencePodKey = (pod: string) => `${presencePodPrefix}${pod}`;

/** Hash of every online user ("id:username") to their stream count cluster-wide: HLEN is the online count. */
export const presenceUsersKey = `${PREFIX}:presence:users`;

/** Prefix of one rate limiter's counters (rate-limiter-flexible appends `:<user key>`): `name` is "send", "typing", or one of those plus ":burst". */
export const rateLimitPrefix = (name: string) => `${PREFIX}:rate:${name}`;

/** Set of the users ("id:username") peers were last told are online: what presence reconciles against the truth. */
export const presenceAnnouncedKey = `${PREFIX}:presence:announced`;

/** Sorted set of users ("id:username") with no stream left, scored by when the last one closed (ms): the offline grace. */
export const presenceLeavingKey = `${PREFIX}:presence:leaving`;

/** Sorted set of the pods with a dashboard report, scored by when the report lapses (ms). */
export const opsPodsKey = `${PREFIX}:ops:pods`;

/** One pod's dashboard report (JSON, with a TTL): its streams, health and recent rates (services/ops/pod-reports.ts). */
export const opsPodReportKey = (pod: string) => `${PREFIX}:ops:pod:${pod}`;

/** Capped list of the controller's recent scaling decisions (JSON), newest first. */
export const opsScalingDecisionsKey = `${PREFIX}:ops:decisions`;

/** The controller's last reported decision (JSON), whatever it was: the dashboard's controller figures. */
export const opsLastDecisionKey = `${PREFIX}:ops:decisions:last`;
