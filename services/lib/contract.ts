// The limits of Parley's public contract (design.md, "The public contract"),
// shared by the server, the terminal client and the benchmark's Socket.IO
// twin, so that each rule is written once.

/** Usernames and group names: 3 to 32 letters, digits, `_`, `-` and `.`. */
export const NAME_PATTERN = /^[A-Za-z0-9_.-]{3,32}$/;
/** How NAME_PATTERN reads in an error message. */
export const NAME_RULE = '3 to 32 letters, digits, "_", "-" or "."';

/** A message body is at most this many bytes of UTF-8. */
export const MAX_BODY_BYTES = 4096;
/** A `client_msg_id` is 1 to this many characters (code points). */
export const MAX_CLIENT_MSG_ID_CHARS = 64;
/** Passwords are 8 to 128 characters (code points). */
export const PASSWORD_CHARS = { min: 8, max: 128 } as const;

/** `GetHistory` returns this many messages when `limit` is 0. */
export const HISTORY_DEFAULT_LIMIT = 50;
/** `GetHistory` returns at most this many messages, whatever `limit` asks. */
export const HISTORY_MAX_LIMIT = 200;

/** Users one chat pod serves: the scaler's target unless `scalerMetadata.usersPerReplica` says otherwise, and the controller's default (design.md, scaling). */
export const DEFAULT_USERS_PER_REPLICA = 3;

/** The external scaler's metric: distinct users online in the whole cluster (design.md, scaling). */
export const ONLINE_USERS_METRIC = "online_users";
