import type { ConversationKindName, UserRef } from "../db/schema.js";
import { AppError } from "../lib/app-error.js";
import { conversationChannel, userChannel } from "../lib/keys.js";
import { quote } from "../lib/text.js";
import { checkName } from "../lib/validation.js";
import { BROADCAST_ID, directConversationId, groupConversationId } from "./conversation-ids.js";
import type { GroupStore } from "./group-store.js";
import type { UserDirectory } from "./user-directory.js";

/** Where a message (or a typing frame) goes: exactly one of the three, as the client sent it. */
export interface TargetInput {
  username?: string | undefined;
  group?: string | undefined;
  broadcast?: boolean | undefined;
}

/** A target resolved to its conversation. */
export interface ResolvedTarget {
  kind: ConversationKindName;
  conversationId: string;
  /** The recipient's username as signed up (DM), the group's name as created, "" for broadcast. */
  toName: string;
  /** The DM's recipient; undefined for a group or broadcast. */
  recipientId?: number;
  /** The bus channels that carry a message to it (lib/keys.ts): both users' for a DM, the conversation's otherwise. */
  channels: string[];
}

/**
 * Resolves a `Target` for a send or a typing frame. Throws AppError
 * `invalid_argument` for a bad name or no target, `not_found` for an unknown
 * user or group. Membership is the caller's to check: a send checks it in its
 * statement, a typing frame before it publishes.
 */
export class TargetResolver {
  constructor(
    private readonly users: UserDirectory,
    private readonly groups: GroupStore,
  ) {}

  async resolve(sender: UserRef, to: TargetInput | undefined): Promise<ResolvedTarget> {
    if (to?.username) {
      const recipient = await this.users.get(to.username);
      return {
        kind: "direct",
        // The DM's conversation row is created with its first message (append-statements.ts).
        conversationId: directConversationId(sender.id, recipient.id),
        toName: recipient.username,
        recipientId: recipient.id,
        channels: [...new Set([sender.id, recipient.id])].map(userChannel),
      };
    }
    if (to?.group) {
      const conversationId = groupConversationId(checkName(to.group, "group name"));
      // The name as created, not as the sender typed it; undefined when there is no such group.
      const name = await this.groups.nameOf(conversationId);
      if (name === undefined) throw new AppError("not_found", `no group named ${quote(to.group)}`);
      return { kind: "group", conversationId, toName: name, channels: [conversationChannel(conversationId)] };
    }
    if (to?.broadcast === true) {
      return { kind: "broadcast", conversationId: BROADCAST_ID, toName: "", channels: [conversationChannel(BROADCAST_ID)] };
    }
    throw new AppError("invalid_argument", "to must name a username, a group, or broadcast");
  }
}
