import type { PendingSend } from "./pending_send.js";

interface Entry {
  send: PendingSend;
  inFlight: boolean;
  notBeforeMs: number;
}

// The sends the server has not confirmed, in the order the app made them, each either queued or
// in flight on the current connection. Pure bookkeeping (no I/O, no clock of its own): the client
// decides when to send, retry and give up.
export class Outbox {
  // A Map iterates in insertion order: the order the app made its sends.
  private readonly entries = new Map<string, Entry>();
  private inFlightCount = 0;

  // False when the clientMsgId is already held.
  add(send: PendingSend): boolean {
    if (this.entries.has(send.clientMsgId)) return false;
    this.entries.set(send.clientMsgId, { send, inFlight: false, notBeforeMs: 0 });
    return true;
  }

  // Marks up to `limit` queued sends whose retry time has come as in flight and returns them,
  // oldest first.
  takeReady(nowMs: number, limit: number): PendingSend[] {
    const ready: PendingSend[] = [];
    for (const entry of this.entries.values()) {
      if (ready.length >= limit) break;
      if (entry.inFlight || entry.notBeforeMs > nowMs) continue;
      entry.inFlight = true;
      ++this.inFlightCount;
      ready.push(entry.send);
    }
    return ready;
  }

  // Removes a send whose outcome is known; undefined when it is not held.
  remove(clientMsgId: string): PendingSend | undefined {
    const entry = this.entries.get(clientMsgId);
    if (!entry) return undefined;
    if (entry.inFlight) --this.inFlightCount;
    this.entries.delete(clientMsgId);
    return entry.send;
  }

  // An in-flight send goes back to the queue, not to be sent before `notBeforeMs`.
  requeue(clientMsgId: string, notBeforeMs: number): void {
    const entry = this.entries.get(clientMsgId);
    if (!entry) return;
    if (entry.inFlight) --this.inFlightCount;
    entry.inFlight = false;
    entry.notBeforeMs = notBeforeMs;
  }

  // The connection is gone: everything in flight is queued again (same clientMsgId, so a send the
  // server did store is answered with its original seq when retried).
  requeueAll(): void {
    for (const entry of this.entries.values()) entry.inFlight = false;
    this.inFlightCount = 0;
  }

  // Removes and returns queued (not in-flight) sends whose deadline (wall clock) has passed: one
  // on the wire waits for its answer, which decides.
  takeExpired(wallNowMs: number): PendingSend[] {
    const expired: PendingSend[] = [];
    for (const [id, entry] of this.entries) {
      if (entry.inFlight || entry.send.deadlineMs === 0 || entry.send.deadlineMs > wallNowMs)
        continue;
      expired.push(entry.send);
      this.entries.delete(id);
    }
    return expired;
  }

  isInFlight(clientMsgId: string): boolean {
    return this.entries.get(clientMsgId)?.inFlight ?? false;
  }

  get inFlight(): number {
    return this.inFlightCount;
  }

  get size(): number {
    return this.entries.size;
  }

  hasDeadlines(): boolean {
    for (const entry of this.entries.values()) if (entry.send.deadlineMs !== 0) return true;
    return false;
  }
}
