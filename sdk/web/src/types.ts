// Plain values the SDK hands to the app. They mirror im.v1 (proto/im/v1/client.proto) without
// exposing the generated classes, so the public API does not change with the generated code.
// Seqs are numbers (per conversation, far below 2^53); msg ids are 64-bit, so decimal strings.
import type { Status } from "./status.js";

export interface Message {
  convId: string;
  seq: number;
  msgId: string;
  sender: string;
  clientMsgId: string;
  // im.v1.MessageType: 1 TEXT, 2 IMAGE, 3 FILE, 4 CUSTOM, 5 SYSTEM, 6 RECALL and 7 EDIT (changes
  // of the message at refSeq; an EDIT's body is the new body).
  type: number;
  body: Uint8Array;
  createdMs: number;
  refSeq: number;
  recalled: boolean;
  editedMs: number; // 0: never edited
}

export const MESSAGE_TEXT = 1;
// A system notice (a group's changes, or the app server's own: docs/admin-api.md), from @system.
export const MESSAGE_SYSTEM = 5;
export const MESSAGE_RECALL = 6;
export const MESSAGE_EDIT = 7;

export interface Conversation {
  convId: string;
  maxSeq: number;
  deliveredSeq: number;
  readSeq: number;
  unread: number;
  peerReadSeq: number; // single chat: how far the peer has read
  updatedMs: number;
  lastMessage: Message | null;
}

// What became of one send: sent (code OK, with the seq the server gave it) or failed for good.
export interface SendResult {
  clientMsgId: string;
  status: Status;
  convId: string;
  seq: number;
  msgId: string;
  serverTimeMs: number;
}

export interface ReadReceipt {
  convId: string;
  reader: string;
  readSeq: number;
}

export interface TypingNotice {
  convId: string;
  uid: string;
}

export interface GroupMember {
  uid: string;
  role: number; // im.v1.GroupRole: 1 MEMBER, 2 ADMIN, 3 OWNER
  joinedSeq: number;
}

export interface GroupCreated {
  groupId: string;
  convId: string;
}

export interface SeqRange {
  first: number;
  last: number;
}

// One history page: messages in seq order, and ranges that will never hold a message.
export interface HistoryPage {
  messages: Message[];
  holes: SeqRange[];
}

export type ConnectionState =
  | "idle" // not started, or stopped
  | "connecting" // connecting or logging in (after a failure: waiting for the next attempt)
  | "connected" // logged in; sends and pushes flow
  | "kicked" // the server kicked this device: no reconnect until setToken(), or stop() and start()
  | "auth_failed"; // the token was refused: no reconnect until setToken()

// Callbacks from the client, each in the order things happened, never re-entrantly (they run as
// microtasks, after the call or event that caused them). All optional.
export interface ClientListener {
  onStateChanged?(state: ConnectionState, reason: Status): void;
  // New messages of one conversation, in seq order, each once over the life of the cursor.
  // Includes this device's own sends once the server has given them a seq.
  onMessages?(convId: string, messages: Message[]): void;
  // The outcome of a send: exactly once per send.
  onSendResult?(result: SendResult): void;
  onReadReceipt?(receipt: ReadReceipt): void;
  onTyping?(notice: TypingNotice): void;
}
