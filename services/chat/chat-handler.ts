import type { Metadata } from "@grpc/grpc-js";
import { ChatServiceService, type ChatServiceServer, type Group } from "../../gen/parley/chat/v1/chat.js";
import { userOf } from "../auth/sessions.js";
import { bearerToken, tolerantRequests, unary } from "../lib/grpc-calls.js";
import { serializeFrame, toConversationKind, toMessage } from "./frames.js";
import type { GroupView } from "./group-store.js";
import { type ChatCallDeps, serveConnect, serveSubscribe } from "./stream-protocol.js";

/**
 * ChatService's definition with two transport tweaks: server frames may be
 * pre-encoded bytes (encoded once per fan-out), and a malformed request never
 * throws inside grpc-js (which would end the stream).
 */
export const chatServiceDefinition = tolerantRequests(
  {
    ...ChatServiceService,
    connect: { ...ChatServiceService.connect, responseSerialize: serializeFrame },
    subscribe: { ...ChatServiceService.subscribe, responseSerialize: serializeFrame },
  },
  // A retried send must find its original whatever its body is now: the domain checks the body after that.
  { domainCheckedText: ["parley.chat.v1.SendRequest.body"] },
);

const toGroup = (g: GroupView): Group => ({
  name: g.name,
  memberCount: g.memberCount,
  conversationId: g.conversationId,
  isMember: g.isMember,
  createdAt: g.createdAt,
});

/** gRPC transport for ChatService: authenticate, decode, call the domain, encode. */
export function createChatHandler({ chat, sender, sessions, opener, calls, metrics, log }: ChatCallDeps): ChatServiceServer {
  const handlerLog = log.child({ component: "chat-handler" });
  const caller = async (call: { metadata: Metadata }) => {
    const session = await sessions.verify(bearerToken(call.metadata));
    return userOf(session);
  };

  return {
    connect: (call) => serveConnect(call, { chat, sender, sessions, opener, calls, metrics, log: handlerLog }),
    subscribe: (call) => serveSubscribe(call, { chat, sender, sessions, opener, calls, metrics, log: handlerLog }),

    send: unary(handlerLog, "Send", async (req, call) => ({
      message: toMessage(await sender.send(await caller(call), { clientMsgId: req.clientMsgId, to: req.to, body: req.body })),
    })),
    getHistory: unary(handlerLog, "GetHistory", async (req, call) => {
      const page = await chat.history(await caller(call), req.conversationId, req.beforeSeq, req.limit);
      return { messages: page.records.map(toMessage), hasMore: page.hasMore };
    }),
    listConversations: unary(handlerLog, "ListConversations", async (_req, call) => ({
      conversations: (await chat.conversations(await caller(call))).map((c) => ({ ...c, kind: toConversationKind(c.kind) })),
    })),
    markRead: unary(handlerLog, "MarkRead", async (req, call) => ({
      lastReadSeq: await chat.markRead(await caller(call), req.conversationId, req.seq),
    })),
    createGroup: unary(handlerLog, "CreateGroup", async (req, call) => ({
      group: toGroup(await chat.createGroup(await caller(call), req.name)),
    })),
    joinGroup: unary(handlerLog, "JoinGroup", async (req, call) => ({
      group: toGroup(await chat.joinGroup(await caller(call), req.name)),
    })),
    leaveGroup: unary(handlerLog, "LeaveGroup", async (req, call) => ({
      group: toGroup(await chat.leaveGroup(await caller(call), req.name)),
    })),
    listGroups: unary(handlerLog, "ListGroups", async (req, call) => ({
      groups: (await chat.listGroups(await caller(call), req.query, req.mine)).map(toGroup),
    })),
    sendTyping: unary(handlerLog, "SendTyping", async (req, call) => {
      await chat.typing(await caller(call), req.to);
      return {};
    }),
    listOnlineUsers: unary(handlerLog, "ListOnlineUsers", async (_req, call) => {
      await caller(call);
      return { usernames: await chat.onlineUsers() };
    }),
  } satisfies ChatServiceServer;
}
