import { MESSAGE_TEXT, type Conversation, type Message } from "@im-cluster/web-sdk";
import { peerOf } from "./desk.js";

const decoder = new TextDecoder();

interface Entry {
  convId: string;
  peer: string;
  unread: number;
  maxSeq: number;
  readSeq: number; // the desk's read cursor, shared by every staff device
  peerReadSeq: number;
  preview: string;
  updatedMs: number;
}

// The staff console's list of the desk's chats, newest activity first, with unread counts: the
// server's numbers after each login, kept current from pushes and read receipts in between.
export class ConversationListView {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly list: HTMLUListElement,
    private readonly self: string,
    onOpen: (convId: string) => void,
  ) {
    list.addEventListener("click", (event) => {
      const item = (event.target as HTMLElement).closest<HTMLElement>("li[data-conv-id]");
      if (item) onOpen(item.dataset.convId!);
    });
  }

  get(convId: string): Entry | undefined {
    return this.entries.get(convId);
  }

  // The server's list after a login. A read this page saw that is newer than the list (a
  // markRead answered after the list was made) keeps its cursor and count.
  replaceAll(conversations: readonly Conversation[]): void {
    const known = new Map(this.entries);
    this.entries.clear();
    for (const conversation of conversations) {
      const peer = peerOf(conversation.convId, this.self);
      if (!peer) continue; // the desk answers single chats only
      const last = conversation.lastMessage;
      const entry: Entry = {
        convId: conversation.convId,
        peer,
        unread: conversation.unread,
        maxSeq: conversation.maxSeq,
        readSeq: conversation.readSeq,
        peerReadSeq: conversation.peerReadSeq,
        preview: last ? previewOf(last) : "",
        updatedMs: conversation.updatedMs,
      };
      const local = known.get(entry.convId);
      if (local && local.readSeq > entry.readSeq) {
        entry.readSeq = local.readSeq;
        entry.unread = local.unread;
      }
      this.entries.set(entry.convId, entry);
    }
  }

  noteMessages(convId: string, messages: readonly Message[]): void {
    const peer = peerOf(convId, this.self);
    if (!peer) return;
    let entry = this.entries.get(convId);
    if (!entry) {
      entry = {
        convId,
        peer,
        unread: 0,
        maxSeq: 0,
        readSeq: 0,
        peerReadSeq: 0,
        preview: "",
        updatedMs: 0,
      };
      this.entries.set(convId, entry);
    }
    for (const message of messages) {
      if (message.seq <= entry.maxSeq) continue;
      entry.maxSeq = message.seq;
      if (message.sender !== this.self && message.seq > entry.readSeq) entry.unread += 1;
      if (message.type === MESSAGE_TEXT) entry.preview = previewOf(message);
      entry.updatedMs = Math.max(entry.updatedMs, message.createdMs);
    }
  }

  // The desk read up to `readSeq` (this device or another staff member's). `unreadLeft`: the
  // others' messages above it, when the caller has them all; else the count is 0 when the read
  // reaches the newest message, and kept otherwise (the next login's list corrects it).
  noteRead(convId: string, readSeq: number, unreadLeft?: number): void {
    const entry = this.entries.get(convId);
    if (!entry || readSeq <= entry.readSeq) return;
    entry.readSeq = readSeq;
    if (unreadLeft !== undefined) entry.unread = unreadLeft;
    else if (readSeq >= entry.maxSeq) entry.unread = 0;
  }

  notePeerRead(convId: string, readSeq: number): void {
    const entry = this.entries.get(convId);
    if (entry) entry.peerReadSeq = Math.max(entry.peerReadSeq, readSeq);
  }

  render(openConvId: string): void {
    const sorted = [...this.entries.values()].sort((a, b) => b.updatedMs - a.updatedMs);
    this.list.replaceChildren(...sorted.map((entry) => itemOf(entry, entry.convId === openConvId)));
  }
}

function itemOf(entry: Entry, open: boolean): HTMLLIElement {
  const item = document.createElement("li");
  item.className = open ? "conversation open" : "conversation";
  item.dataset.convId = entry.convId;
  item.dataset.peer = entry.peer;
  const peer = document.createElement("span");
  peer.className = "peer";
  peer.textContent = entry.peer;
  const unread = document.createElement("span");
  unread.className = "unread";
  unread.textContent = String(entry.unread);
  unread.hidden = entry.unread === 0;
  const preview = document.createElement("span");
  preview.className = "preview";
  preview.textContent = entry.preview;
  item.append(peer, unread, preview);
  return item;
}

function previewOf(message: Message): string {
  return message.recalled ? "Message recalled" : decoder.decode(message.body);
}
