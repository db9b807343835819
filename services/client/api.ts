import { credentials, Metadata, type CallOptions, type ChannelOptions, type ServiceError } from "@grpc/grpc-js";
import { AuthServiceClient, type LogInResponse, type User } from "../../gen/parley/auth/v1/auth.js";
import {
  ChatServiceClient,
  type Conversation,
  type GetHistoryResponse,
  type Group,
  type Message,
  type Target,
} from "../../gen/parley/chat/v1/chat.js";

/** Keepalive that stays inside the server's ping policy and notices a dead peer within a minute. */
export const CHANNEL_OPTIONS: ChannelOptions = {
  "grpc.keepalive_time_ms": 30_000,
  "grpc.keepalive_timeout_ms": 10_000,
  "grpc.keepalive_permit_without_calls": 1,
};

type Callback<T> = (err: ServiceError | null, value?: T) => void;
type UnaryMethod<Req, Res> = (request: Req, metadata: Metadata, options: Partial<CallOptions>, callback: Callback<Res>) => unknown;

function call<Req, Res>(method: UnaryMethod<Req, Res>, request: Req, metadata: Metadata, timeoutMs: number): Promise<Res> {
  return new Promise((resolve, reject) =>
    method(request, metadata, { deadline: Date.now() + timeoutMs }, (err, value) => (err ? reject(err) : resolve(value as Res))),
  );
}

/** `authorization: Bearer <token>` metadata. */
export function bearer(token: string | undefined): Metadata {
  const metadata = new Metadata();
  if (token) metadata.set("authorization", `Bearer ${token}`);
  return metadata;
}

/**
 * Promise-shaped unary calls to one Parley address, carrying the session
 * token once logged in. The streaming side lives in ReconnectingClient.
 */
export class ParleyApi {
  readonly auth: AuthServiceClient;
  readonly chat: ChatServiceClient;
  token: string | undefined;

  constructor(
    readonly address: string,
    token?: string,
    private readonly timeoutMs = 10_000,
  ) {
    this.auth = new AuthServiceClient(address, credentials.createInsecure(), CHANNEL_OPTIONS);
    this.chat = new ChatServiceClient(address, credentials.createInsecure(), CHANNEL_OPTIONS);
    this.token = token;
  }

  private rpc<Req, Res>(client: object, method: UnaryMethod<Req, Res>, request: Req): Promise<Res> {
    return call(method.bind(client) as UnaryMethod<Req, Res>, request, bearer(this.token), this.timeoutMs);
  }

  async signUp(username: string, password: string): Promise<LogInResponse> {
    const grant = await this.rpc(this.auth, this.auth.signUp, { username, password });
    this.token = grant.token;
    return grant;
  }

  async logIn(username: string, password: string): Promise<LogInResponse> {
    const grant = await this.rpc(this.auth, this.auth.logIn, { username, password });
    this.token = grant.token;
    return grant;
  }

  async logOut(): Promise<void> {
    await this.rpc(this.auth, this.auth.logOut, {});
    this.token = undefined;
  }

  async whoAmI(): Promise<User | undefined> {
    return (await this.rpc(this.auth, this.auth.whoAmI, {})).user;
  }

  async send(to: Target, body: string, clientMsgId: string): Promise<Message> {
    const response = await this.rpc(this.chat, this.chat.send, { clientMsgId, to, body });
    return response.message as Message;
  }

  getHistory(conversationId: string, beforeSeq = 0, limit = 0): Promise<GetHistoryResponse> {
    return this.rpc(this.chat, this.chat.getHistory, { conversationId, beforeSeq, limit });
  }

  async listConversations(): Promise<Conversation[]> {
    return (await this.rpc(this.chat, this.chat.listConversations, {})).conversations;
  }

  async markRead(conversationId: string, seq: number): Promise<number> {
    return (await this.rpc(this.chat, this.chat.markRead, { conversationId, seq })).lastReadSeq;
  }

  async createGroup(name: string): Promise<Group> {
    return (await this.rpc(this.chat, this.chat.createGroup, { name })).group as Group;
  }

  async joinGroup(name: string): Promise<Group> {
    return (await this.rpc(this.chat, this.chat.joinGroup, { name })).group as Group;
  }

  async leaveGroup(name: string): Promise<Group> {
    return (await this.rpc(this.chat, this.chat.leaveGroup, { name })).group as Group;
  }

  async listGroups(query = "", mine = false): Promise<Group[]> {
    return (await this.rpc(this.chat, this.chat.listGroups, { query, mine })).groups;
  }

  /** The `typing` frame as a unary call (what a gRPC-web client uses). */
  async sendTyping(to: Target): Promise<void> {
    await this.rpc(this.chat, this.chat.sendTyping, { to });
  }

  async listOnlineUsers(): Promise<string[]> {
    return (await this.rpc(this.chat, this.chat.listOnlineUsers, {})).usernames;
  }

  close(): void {
    this.auth.close();
    this.chat.close();
  }
}
