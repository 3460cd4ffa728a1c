import { ConversationStream } from "./conversation_stream.js";
import type { Conversation, Message, SeqRange } from "./types.js";

export interface SyncRequest {
  convId: string;
  afterSeq: number;
}

export interface Delivery {
  convId: string;
  messages: Message[];
}

export interface SyncPage {
  messages: Message[];
  holes: SeqRange[];
  hasMore: boolean;
  maxSeq: number;
}

interface InboxConversation {
  stream: ConversationStream | null; // null while the starting cursor is unknown
  unbound: Message[]; // held until the cursor is known
  targetSeq: number; // the highest seq the server is known to have
  syncing: boolean;
  closed: boolean; // NOT_MEMBER: no more syncs
  nextSyncMs: number; // not before this
  gapSinceMs: number; // 0: no gap
  acked: number;
}

// The receive side of all conversations (sdk/inbox.h): one ConversationStream each, the decision
// when to sync which range, and the cursors to ack. Pure: the caller passes the time and does the
// I/O.
//
// A conversation whose starting cursor is not known yet (first login of a device without saved
// state) holds what arrives until bind() tells where it starts, so that a push racing the login's
// conversation list cannot make a device replay a conversation's whole history.
export class Inbox {
  private isBound = false;
  private readonly conversations = new Map<string, InboxConversation>();

  constructor(private readonly gapWaitMs: number) {}

  get bound(): boolean {
    return this.isBound;
  }

  // Cursors saved by an earlier run: these conversations start where they stopped.
  restore(cursors: ReadonlyMap<string, number>): void {
    for (const [convId, cursor] of cursors) {
      const conversation = this.conversation(convId);
      if (!conversation.stream) this.start(conversation, cursor);
      conversation.acked = Math.max(conversation.acked, cursor);
    }
  }

  // Messages from a push or from this device's own confirmed send.
  receive(convId: string, messages: Message[], nowMs: number): Delivery | null {
    const conversation = this.conversation(convId);
    for (const message of messages) {
      conversation.targetSeq = Math.max(conversation.targetSeq, message.seq);
    }
    if (!conversation.stream) {
      if (!this.isBound) {
        conversation.unbound.push(...messages);
        return null;
      }
      this.start(conversation, 0);
    }
    return this.deliver(convId, conversation, conversation.stream!.add(messages), nowMs);
  }

  // The server's view after login: per conversation its delivered cursor and max seq.
  // Conversations without a known cursor start at the server's delivered cursor; every one that
  // moved past the local cursor is scheduled for a sync. After the first bind, conversations
  // first seen later start at 0 (they are new).
  bind(serverView: readonly Conversation[], nowMs: number): Delivery[] {
    const deliveries: Delivery[] = [];
    const deliverUnbound = (convId: string, conversation: InboxConversation) => {
      const delivery = this.deliver(
        convId,
        conversation,
        conversation.stream!.add(conversation.unbound),
        nowMs,
      );
      conversation.unbound = [];
      if (delivery) deliveries.push(delivery);
    };
    for (const view of serverView) {
      const conversation = this.conversation(view.convId);
      conversation.targetSeq = Math.max(conversation.targetSeq, view.maxSeq);
      conversation.closed = false;
      if (!conversation.stream) {
        this.start(conversation, view.deliveredSeq);
        deliverUnbound(view.convId, conversation);
      }
      if (this.needsSync(conversation)) conversation.nextSyncMs = nowMs;
    }
    // Seen only in pushes and not in the server's list: new since the list was read. (Held
    // messages of a conversation whose saved cursor was restored after they came go out too.)
    for (const [convId, conversation] of this.conversations) {
      if (!conversation.stream) this.start(conversation, 0);
      if (conversation.unbound.length > 0) deliverUnbound(convId, conversation);
    }
    this.isBound = true;
    return deliveries;
  }

  // Syncs to start now; each is marked in progress until onSynced/onSyncFailed.
  takeDueSyncs(nowMs: number): SyncRequest[] {
    const due: SyncRequest[] = [];
    for (const [convId, conversation] of this.conversations) {
      if (conversation.syncing || !this.needsSync(conversation)) continue;
      if (nowMs < conversation.nextSyncMs) continue;
      conversation.syncing = true;
      due.push({ convId, afterSeq: conversation.stream!.delivered });
    }
    return due;
  }

  onSynced(convId: string, page: SyncPage, nowMs: number): Delivery | null {
    const conversation = this.conversation(convId);
    conversation.syncing = false;
    const stream = conversation.stream;
    if (!stream) return null;
    const before = stream.delivered;
    conversation.targetSeq = Math.max(conversation.targetSeq, page.maxSeq);
    const ready = stream.add(page.messages);
    for (const hole of page.holes) ready.push(...stream.addHole(hole.first, hole.last));
    const progressed = stream.delivered > before;
    // More to fetch right away when this page moved the cursor; otherwise the server is waiting
    // out a write in progress (or the gap is a push still on its way): ask again a little later.
    conversation.nextSyncMs = progressed && page.hasMore ? nowMs : nowMs + this.gapWaitMs;
    return this.deliver(convId, conversation, ready, nowMs);
  }

  // `retry` false: the conversation is closed to this user (NOT_MEMBER): stop syncing it.
  // `retryInMs`: when to try again (a hint, jittered); 0: the inbox's own pause.
  onSyncFailed(convId: string, retry: boolean, nowMs: number, retryInMs = 0): void {
    const conversation = this.conversation(convId);
    conversation.syncing = false;
    conversation.closed = !retry;
    conversation.nextSyncMs = nowMs + (retryInMs > 0 ? retryInMs : 4 * this.gapWaitMs);
  }

  // The connection is gone: syncs in progress are forgotten (bind after the next login resumes).
  abortSyncs(): void {
    for (const conversation of this.conversations.values()) conversation.syncing = false;
  }

  // Cursors that moved since the last call (to ack and to save).
  takeMovedCursors(): Map<string, number> {
    const moved = new Map<string, number>();
    for (const [convId, conversation] of this.conversations) {
      const stream = conversation.stream;
      if (!stream || stream.delivered <= conversation.acked) continue;
      conversation.acked = stream.delivered;
      moved.set(convId, conversation.acked);
    }
    return moved;
  }

  cursors(): Map<string, number> {
    const cursors = new Map<string, number>();
    for (const [convId, conversation] of this.conversations) {
      if (conversation.stream) cursors.set(convId, conversation.stream.delivered);
    }
    return cursors;
  }

  delivered(convId: string): number {
    return this.conversations.get(convId)?.stream?.delivered ?? 0;
  }

  private conversation(convId: string): InboxConversation {
    let conversation = this.conversations.get(convId);
    if (!conversation) {
      conversation = {
        stream: null,
        unbound: [],
        targetSeq: 0,
        syncing: false,
        closed: false,
        nextSyncMs: 0,
        gapSinceMs: 0,
        acked: 0,
      };
      this.conversations.set(convId, conversation);
    }
    return conversation;
  }

  private start(conversation: InboxConversation, cursor: number): void {
    conversation.stream = new ConversationStream(cursor);
    conversation.acked = cursor;
  }

  private needsSync(conversation: InboxConversation): boolean {
    if (!conversation.stream || conversation.closed) return false;
    return conversation.stream.delivered < conversation.targetSeq;
  }

  private deliver(
    convId: string,
    conversation: InboxConversation,
    ready: Message[],
    nowMs: number,
  ): Delivery | null {
    if (conversation.stream!.hasGap) {
      // A new gap first waits a moment: the missing message is usually a push just behind.
      if (conversation.gapSinceMs === 0) {
        conversation.gapSinceMs = nowMs;
        conversation.nextSyncMs = Math.max(conversation.nextSyncMs, nowMs + this.gapWaitMs);
      }
    } else {
      conversation.gapSinceMs = 0;
    }
    return ready.length > 0 ? { convId, messages: ready } : null;
  }
}
