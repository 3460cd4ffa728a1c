import type { PendingSend } from "./pending_send.js";
import { copyPendingSend, type SavedState, type StateStore } from "./state_store.js";

interface Account {
  cursors: Map<string, number>;
  outbox: Map<string, PendingSend>; // insertion order = send order
}

// State that lives as long as the page or process: the default. An app restart starts from the
// server's delivered cursors and loses unsent messages; use IndexedDbStateStore to keep them.
export class InMemoryStateStore implements StateStore {
  private readonly accounts = new Map<string, Account>();

  async load(uid: string): Promise<SavedState> {
    const account = this.account(uid);
    return {
      cursors: new Map(account.cursors),
      outbox: [...account.outbox.values()].map(copyPendingSend),
    };
  }

  async saveCursors(uid: string, cursors: ReadonlyMap<string, number>): Promise<void> {
    const saved = this.account(uid).cursors;
    for (const [convId, seq] of cursors) saved.set(convId, Math.max(saved.get(convId) ?? 0, seq));
  }

  async addPending(uid: string, send: PendingSend): Promise<void> {
    this.account(uid).outbox.set(send.clientMsgId, copyPendingSend(send));
  }

  async removePending(uid: string, clientMsgId: string): Promise<void> {
    this.account(uid).outbox.delete(clientMsgId);
  }

  private account(uid: string): Account {
    let account = this.accounts.get(uid);
    if (!account) {
      account = { cursors: new Map(), outbox: new Map() };
      this.accounts.set(uid, account);
    }
    return account;
  }
}
