// Between the generated im.v1 classes and the SDK's plain values, and between Frames and bytes.
import { create, fromBinary, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import {
  FrameSchema,
  type Conversation as WireConversation,
  type Frame,
  type Message as WireMessage,
  type Status as WireStatus,
} from "./gen/im/v1/client_pb.js";
import { Code, type Status } from "./status.js";
import type { Conversation, Message, SeqRange } from "./types.js";

// A frame's body as a plain object ({case: "sendReq", value: {...}}); missing fields are zero.
export type FrameBody = NonNullable<MessageInitShape<typeof FrameSchema>["body"]>;

// `id`: chosen by the requester and echoed in its response; 0 for frames without one.
export function makeFrame(body: FrameBody, id = 0n): Frame {
  return create(FrameSchema, { id, body });
}

export function encodeFrame(frame: Frame): Uint8Array {
  return toBinary(FrameSchema, frame);
}

// Null when the bytes are not a Frame (the caller closes the connection).
export function decodeFrame(bytes: Uint8Array): Frame | null {
  try {
    return fromBinary(FrameSchema, bytes);
  } catch {
    return null;
  }
}

export function statusOf(status: WireStatus | undefined): Status {
  // A response without a status is a server that set nothing: proto3 reads that as OK.
  return { code: status?.code ?? Code.OK, message: status?.message ?? "" };
}

export function messageOf(message: WireMessage): Message {
  return {
    convId: message.convId,
    seq: Number(message.seq),
    msgId: message.msgId.toString(),
    sender: message.sender,
    clientMsgId: message.clientMsgId,
    type: message.type,
    body: message.body,
    createdMs: Number(message.createdMs),
    refSeq: Number(message.refSeq),
    recalled: message.recalled,
    editedMs: Number(message.editedMs),
  };
}

export function conversationOf(conversation: WireConversation): Conversation {
  return {
    convId: conversation.convId,
    maxSeq: Number(conversation.maxSeq),
    deliveredSeq: Number(conversation.deliveredSeq),
    readSeq: Number(conversation.readSeq),
    unread: Number(conversation.unread),
    peerReadSeq: Number(conversation.peerReadSeq),
    updatedMs: Number(conversation.updatedMs),
    lastMessage: conversation.lastMessage ? messageOf(conversation.lastMessage) : null,
  };
}

export function rangesOf(ranges: readonly { first: bigint; last: bigint }[]): SeqRange[] {
  return ranges.map((range) => ({ first: Number(range.first), last: Number(range.last) }));
}
