import type { Message } from "./types.js";

// One conversation's receive side: turns messages that arrive in any order, more than once, from
// pushes, syncs and the device's own sends, into one stream in seq order with every seq once.
// `delivered` is the highest seq handed to the app with nothing missing below it (holes the
// server reported count as present). Pure: no I/O, no clock.
export class ConversationStream {
  private deliveredSeq: number;
  private readonly held = new Map<number, Message>();
  // Hole ranges above the cursor: first -> last.
  private readonly holes = new Map<number, number>();

  constructor(delivered: number) {
    this.deliveredSeq = delivered;
  }

  get delivered(): number {
    return this.deliveredSeq;
  }

  // Takes messages in any order; returns those that became deliverable, in seq order. Messages at
  // or below the cursor (already delivered) are dropped, as are repeats of held ones.
  add(messages: readonly Message[]): Message[] {
    for (const message of messages) {
      if (message.seq <= this.deliveredSeq || this.held.has(message.seq)) continue;
      this.held.set(message.seq, message);
    }
    return this.drain();
  }

  // Marks [first, last] as never holding a message; returns what that made deliverable.
  addHole(first: number, last: number): Message[] {
    if (last < first || last <= this.deliveredSeq) return [];
    const start = Math.max(first, this.deliveredSeq + 1);
    this.holes.set(start, Math.max(this.holes.get(start) ?? 0, last));
    return this.drain();
  }

  // True while a message above the cursor is held waiting for a lower one.
  get hasGap(): boolean {
    return this.held.size > 0;
  }

  get heldCount(): number {
    return this.held.size;
  }

  // The highest seq seen so far (held or delivered).
  get highestSeen(): number {
    let highest = this.deliveredSeq;
    for (const seq of this.held.keys()) highest = Math.max(highest, seq);
    return highest;
  }

  private drain(): Message[] {
    const ready: Message[] = [];
    for (;;) {
      if (this.skipHoles()) continue;
      const next = this.held.get(this.deliveredSeq + 1);
      if (!next) break;
      this.held.delete(next.seq);
      this.deliveredSeq = next.seq;
      ready.push(next);
    }
    return ready;
  }

  // A hole starting at or below the next seq moves the cursor past it; messages it passed over
  // (inside the hole) are dropped. True when the cursor moved.
  private skipHoles(): boolean {
    let moved = false;
    for (const [first, last] of this.holes) {
      if (first > this.deliveredSeq + 1) continue;
      this.holes.delete(first);
      if (last > this.deliveredSeq) {
        this.deliveredSeq = last;
        moved = true;
      }
    }
    if (moved) {
      for (const seq of this.held.keys()) if (seq <= this.deliveredSeq) this.held.delete(seq);
    }
    return moved;
  }
}
