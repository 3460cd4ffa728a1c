import {
  Code,
  MESSAGE_EDIT,
  MESSAGE_RECALL,
  MESSAGE_TEXT,
  codeName,
  type Message,
  type SendResult,
} from "@im-cluster/web-sdk";

const decoder = new TextDecoder();
const encoder = new TextEncoder();
const NEAR_BOTTOM_PX = 40;

interface PendingText {
  text: string;
  failure: string; // "" while the send is in progress
}

// One conversation as this device shows it: messages by seq (so a message the SDK delivers, a
// history page repeats and a send result announces is still one line), the sends still without
// a seq after them in the order they were made, and how far the peer has read.
export class ConversationView {
  private readonly messages = new Map<number, Message>();
  private readonly pending = new Map<string, PendingText>();
  private peerReadSeq = 0;

  constructor(
    readonly convId: string,
    private readonly self: string,
  ) {}

  // The newest seq, and the newest of someone else's messages (what reading reads).
  get maxSeq(): number {
    let max = 0;
    for (const seq of this.messages.keys()) max = Math.max(max, seq);
    return max;
  }

  get newestFromOthers(): number {
    let max = 0;
    for (const message of this.messages.values()) {
      if (message.sender !== this.self) max = Math.max(max, message.seq);
    }
    return max;
  }

  // How many of the others' messages shown are above `seq`.
  countFromOthersAfter(seq: number): number {
    let count = 0;
    for (const message of this.messages.values()) {
      if (message.sender !== this.self && message.seq > seq) count += 1;
    }
    return count;
  }

  addMessages(messages: readonly Message[]): void {
    for (const message of messages) {
      if (message.convId !== this.convId) continue;
      this.messages.set(message.seq, message);
      if (message.sender === this.self) this.pending.delete(message.clientMsgId);
    }
  }

  addPending(clientMsgId: string, text: string): void {
    this.pending.set(clientMsgId, { text, failure: "" });
  }

  // Whether the result was one of this conversation's sends.
  onSendResult(result: SendResult): boolean {
    const pending = this.pending.get(result.clientMsgId);
    if (!pending) return false;
    if (result.status.code !== Code.OK) {
      pending.failure = codeName(result.status.code);
      return true;
    }
    this.pending.delete(result.clientMsgId);
    if (!this.messages.has(result.seq)) {
      // Shown now; the SDK delivers the same message (same seq) to onMessages as well.
      this.messages.set(result.seq, {
        convId: this.convId,
        seq: result.seq,
        msgId: result.msgId,
        sender: this.self,
        clientMsgId: result.clientMsgId,
        type: MESSAGE_TEXT,
        body: encoder.encode(pending.text),
        createdMs: result.serverTimeMs,
        refSeq: 0,
        recalled: false,
        editedMs: 0,
      });
    }
    return true;
  }

  setPeerRead(readSeq: number): void {
    this.peerReadSeq = Math.max(this.peerReadSeq, readSeq);
  }

  render(list: HTMLOListElement): void {
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < NEAR_BOTTOM_PX;
    const items: HTMLLIElement[] = [];
    for (const message of this.textMessages()) items.push(this.sentItem(message));
    for (const [clientMsgId, pending] of this.pending) {
      items.push(pendingItem(clientMsgId, pending));
    }
    list.replaceChildren(...items);
    if (atBottom) list.scrollTop = list.scrollHeight;
  }

  // Text messages in seq order, with later recalls and edits applied to them.
  private textMessages(): Message[] {
    const bySeq = [...this.messages.values()].sort((a, b) => a.seq - b.seq);
    const shown = new Map<number, Message>();
    for (const message of bySeq) {
      if (message.type === MESSAGE_TEXT) shown.set(message.seq, message);
      const target = shown.get(message.refSeq);
      if (!target) continue;
      if (message.type === MESSAGE_RECALL) shown.set(target.seq, { ...target, recalled: true });
      if (message.type === MESSAGE_EDIT) shown.set(target.seq, { ...target, body: message.body });
    }
    return [...shown.values()];
  }

  private sentItem(message: Message): HTMLLIElement {
    const mine = message.sender === this.self;
    const text = message.recalled ? "Message recalled" : decoder.decode(message.body);
    let status = "";
    if (mine) status = message.seq <= this.peerReadSeq ? "Read" : "Sent";
    const item = messageItem(mine, text, timeOf(message.createdMs), status);
    item.dataset.seq = String(message.seq);
    item.dataset.sender = message.sender;
    return item;
  }
}

function pendingItem(clientMsgId: string, pending: PendingText): HTMLLIElement {
  const status = pending.failure ? `Not sent (${pending.failure})` : "Sending…";
  const item = messageItem(true, pending.text, "", status);
  item.classList.add(pending.failure ? "failed" : "pending");
  item.dataset.clientMsgId = clientMsgId;
  return item;
}

function messageItem(mine: boolean, text: string, time: string, status: string): HTMLLIElement {
  const item = document.createElement("li");
  item.className = `message ${mine ? "mine" : "theirs"}`;
  const body = document.createElement("p");
  body.className = "body";
  body.textContent = text;
  const meta = document.createElement("p");
  meta.className = "meta";
  const clock = document.createElement("time");
  clock.textContent = time;
  const state = document.createElement("span");
  state.className = "status";
  state.textContent = status;
  meta.append(clock, state);
  item.append(body, meta);
  return item;
}

function timeOf(ms: number): string {
  return new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}
