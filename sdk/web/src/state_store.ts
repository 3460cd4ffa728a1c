import type { PendingSend } from "./pending_send.js";

export interface SavedState {
  cursors: Map<string, number>;
  outbox: PendingSend[]; // in the order the sends were made
}

// What a device remembers across app restarts (sdk/state_store.h): per conversation the delivered
// cursor (the highest contiguous seq handed to the app), and the outbox of unconfirmed sends.
// A store may be shared by accounts; each uid sees only its own. The client calls it one
// operation at a time, in order, and waits for each, so implementations need no queueing.
export interface StateStore {
  load(uid: string): Promise<SavedState>;
  // Upserts cursors; a cursor never moves backwards.
  saveCursors(uid: string, cursors: ReadonlyMap<string, number>): Promise<void>;
  addPending(uid: string, send: PendingSend): Promise<void>;
  removePending(uid: string, clientMsgId: string): Promise<void>;
}

export function copyPendingSend(send: PendingSend): PendingSend {
  return { ...send, body: send.body.slice() };
}
