import { ClientCore } from "./client_core.js";
import type { Frame } from "./gen/im/v1/client_pb.js";
import { resolveOptions, type ClientOptions } from "./options.js";
import { randomClientMsgId } from "./random_id.js";
import { Code, ImError, type Status } from "./status.js";
import {
  MESSAGE_EDIT,
  MESSAGE_RECALL,
  MESSAGE_TEXT,
  type ConnectionState,
  type Conversation,
  type GroupCreated,
  type GroupMember,
  type HistoryPage,
} from "./types.js";
import { conversationOf, messageOf, rangesOf, statusOf, type FrameBody } from "./wire.js";

const GROUP_MEMBERS_PAGE = 500;
const CONVERSATIONS_PAGE = 100;
const encoder = new TextEncoder();

export interface SendOptions {
  type?: number; // im.v1.MessageType; default TEXT
}

type Body = string | Uint8Array;

function bytesOf(body: Body): Uint8Array {
  return typeof body === "string" ? encoder.encode(body) : body.slice();
}

type FrameCase = NonNullable<Frame["body"]["case"]>;
type BodyOf<K extends FrameCase> =
  Extract<Frame["body"], { case: K }> extends { value: infer V } ? V : never;

// The body of a response of kind `kind`, after checking its status: throws ImError when the
// server refused (its code), or when the frame is of another kind.
function answer<K extends FrameCase>(frame: Frame, kind: K): BodyOf<K> {
  if (frame.body.case !== kind) {
    throw new ImError({ code: Code.INTERNAL, message: `expected ${kind}, got ${frame.body.case}` });
  }
  const value = frame.body.value as BodyOf<K>;
  const status: Status = statusOf((value as { status?: Parameters<typeof statusOf>[0] }).status);
  if (status.code !== Code.OK) throw new ImError(status);
  return value;
}

// A device's connection to the cluster over WebSocket: connects to one of the gateways, logs in,
// keeps the heartbeat, reconnects with backoff; sends reliably through an outbox; delivers every
// conversation in seq order with duplicates dropped and gaps synced (sdk/README.md has the
// same guarantees for the C++ SDK; README.md here says what holds for this one).
export class ImClient {
  private readonly core: ClientCore;

  constructor(options: ClientOptions) {
    this.core = new ClientCore(resolveOptions(options));
  }

  // Starts connecting (and keeps reconnecting). Idempotent.
  start(): void {
    this.core.start();
  }

  // Disconnects and stops reconnecting; sends stay in the outbox; start() resumes.
  stop(): void {
    this.core.stop();
  }

  // Stops for good, saves the cursors, releases timers; resolves when the store has them.
  close(): Promise<void> {
    return this.core.close();
  }

  // Replaces the token (expired, or refused: "auth_failed"), and reconnects if it had given up.
  setToken(token: string): void {
    this.core.setToken(token);
  }

  get state(): ConnectionState {
    return this.core.connectionState;
  }

  // The logged-in user (or the token's, before the first login).
  get uid(): string {
    return this.core.userId;
  }

  // Queues a message for a conversation ("s:a:b", "g:<id>"); returns its clientMsgId.
  // onSendResult follows exactly once.
  send(convId: string, body: Body, options: SendOptions = {}): string {
    return this.queue(convId, "", options.type ?? MESSAGE_TEXT, bytesOf(body), 0);
  }

  // A single chat with `toUid` (the server derives the conversation id).
  sendTo(toUid: string, body: Body, options: SendOptions = {}): string {
    return this.queue("", toUid, options.type ?? MESSAGE_TEXT, bytesOf(body), 0);
  }

  // Recalls or edits a message of this user's (a group admin may recall others'), within the
  // server's window: sent like a message, so onSendResult follows once; every device gets the
  // change as a message of type RECALL (6) or EDIT (7) with refSeq.
  recall(convId: string, seq: number): string {
    return this.queue(convId, "", MESSAGE_RECALL, new Uint8Array(), seq);
  }

  edit(convId: string, seq: number, body: Body): string {
    return this.queue(convId, "", MESSAGE_EDIT, bytesOf(body), seq);
  }

  // Tells the others in `convId` that this user is typing. Fire and forget, dropped offline.
  typing(convId: string): void {
    this.core.notice({ case: "typingReq", value: { convId } });
  }

  // Every conversation with unread counts, as the server orders them (every page).
  async listConversations(): Promise<Conversation[]> {
    const all: Conversation[] = [];
    let pageToken = "";
    do {
      const resp = answer(
        await this.call(
          { case: "conversationsReq", value: { limit: CONVERSATIONS_PAGE, pageToken } },
          true,
        ),
        "conversationsResp",
      );
      all.push(...resp.conversations.map(conversationOf));
      pageToken = resp.nextPageToken;
    } while (pageToken);
    return all;
  }

  // Up to `limit` messages before `beforeSeq` (0: after the newest delivered), in seq order.
  async loadHistory(convId: string, beforeSeq = 0, limit = 50): Promise<HistoryPage> {
    const before = beforeSeq !== 0 ? beforeSeq : this.core.delivered(convId) + 1;
    const first = before > limit ? before - limit : 1;
    const value = { convId, afterSeq: BigInt(first - 1), limit: before - first };
    const resp = answer(await this.call({ case: "syncReq", value }, true), "syncResp");
    return {
      messages: resp.messages.map(messageOf).filter((message) => message.seq < before),
      holes: rangesOf(resp.holes),
    };
  }

  // Moves the read cursor (the peer and this user's other devices get a read receipt); resolves
  // with the stored cursor, which never moves backwards.
  async markRead(convId: string, readSeq: number): Promise<number> {
    const value = { convId, readSeq: BigInt(readSeq) };
    const resp = answer(await this.call({ case: "readReq", value }, true), "readResp");
    return Number(resp.readSeq);
  }

  // Not resent after a lost connection (a second create would make a second group): rejects
  // with UNAVAILABLE instead.
  async createGroup(name: string, members: string[]): Promise<GroupCreated> {
    const value = { name, members };
    const resp = answer(
      await this.call({ case: "groupCreateReq", value }, false),
      "groupCreateResp",
    );
    return { groupId: resp.groupId, convId: resp.convId };
  }

  // `uids` empty: this user joins. Resolves with the seq the membership starts after.
  async joinGroup(groupId: string, uids: string[] = []): Promise<number> {
    const value = { groupId, uids };
    const resp = answer(await this.call({ case: "groupJoinReq", value }, true), "groupJoinResp");
    return Number(resp.joinedSeq);
  }

  // `uid` empty: this user leaves; else an admin removes uid.
  async leaveGroup(groupId: string, uid = ""): Promise<void> {
    answer(
      await this.call({ case: "groupLeaveReq", value: { groupId, uid } }, true),
      "groupLeaveResp",
    );
  }

  async listGroupMembers(groupId: string): Promise<GroupMember[]> {
    const all: GroupMember[] = [];
    let pageToken = "";
    do {
      const value = { groupId, pageToken, limit: GROUP_MEMBERS_PAGE };
      const resp = answer(
        await this.call({ case: "groupMembersReq", value }, true),
        "groupMembersResp",
      );
      for (const member of resp.members) {
        all.push({ uid: member.uid, role: member.role, joinedSeq: Number(member.joinedSeq) });
      }
      pageToken = resp.nextPageToken;
    } while (pageToken);
    return all;
  }

  // The owner makes a member ADMIN (2) or MEMBER (1), or hands OWNER (3) over. Not resent after
  // a reconnect: a repeat could undo a hand-over made in between.
  async setGroupRole(groupId: string, uid: string, role: number): Promise<void> {
    const value = { groupId, uid, role };
    answer(await this.call({ case: "groupSetRoleReq", value }, false), "groupSetRoleResp");
  }

  private queue(
    convId: string,
    toUid: string,
    type: number,
    body: Uint8Array,
    refSeq: number,
  ): string {
    const clientMsgId = randomClientMsgId();
    this.core.queueSend({
      clientMsgId,
      convId,
      toUid,
      type,
      body,
      refSeq,
      createdMs: 0,
      deadlineMs: 0,
    });
    return clientMsgId;
  }

  private call(body: FrameBody, resendOnReconnect: boolean): Promise<Frame> {
    return this.core.call(body, resendOnReconnect);
  }
}
