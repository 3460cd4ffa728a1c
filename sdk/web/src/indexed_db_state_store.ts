import type { PendingSend } from "./pending_send.js";
import { copyPendingSend, type SavedState, type StateStore } from "./state_store.js";

const SCHEMA_VERSION = 1;
const CURSORS = "cursors"; // {uid, convId, seq}, key [uid, convId]
const OUTBOX = "outbox"; // {order (auto), uid, send}, indexed by uid and by [uid, clientMsgId]
const OUTBOX_BY_UID = "by_uid";
const OUTBOX_BY_ID = "by_id";

interface CursorRecord {
  uid: string;
  convId: string;
  seq: number;
}

interface OutboxRecord {
  order?: number;
  uid: string;
  clientMsgId: string;
  send: PendingSend;
}

function result<T>(request: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

// Resolves when the transaction committed (its writes are durable as the browser makes them).
function committed(transaction: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    transaction.oncomplete = () => resolve();
    transaction.onerror = () => reject(transaction.error);
    transaction.onabort = () => reject(transaction.error ?? new Error("transaction aborted"));
  });
}

// Cursors and unsent messages in the browser's IndexedDB, so that a reload or a closed tab
// resumes the outbox and starts each conversation where the device stopped. The outbox keeps the
// order the sends were made in by an auto-increment key.
export class IndexedDbStateStore implements StateStore {
  private constructor(private readonly db: IDBDatabase) {}

  // `factory`: the IndexedDB to use (globalThis.indexedDB in browsers; a fake one in tests).
  static async open(
    name = "im-sdk",
    factory: IDBFactory | undefined = globalThis.indexedDB,
  ): Promise<IndexedDbStateStore> {
    if (!factory) throw new Error("IndexedDB is not available here; use InMemoryStateStore");
    const request = factory.open(name, SCHEMA_VERSION);
    request.onupgradeneeded = () => {
      const db = request.result;
      if (!db.objectStoreNames.contains(CURSORS)) {
        db.createObjectStore(CURSORS, { keyPath: ["uid", "convId"] });
      }
      if (!db.objectStoreNames.contains(OUTBOX)) {
        const outbox = db.createObjectStore(OUTBOX, { keyPath: "order", autoIncrement: true });
        outbox.createIndex(OUTBOX_BY_UID, "uid");
        outbox.createIndex(OUTBOX_BY_ID, ["uid", "clientMsgId"], { unique: true });
      }
    };
    return new IndexedDbStateStore(await result(request));
  }

  close(): void {
    this.db.close();
  }

  async load(uid: string): Promise<SavedState> {
    const transaction = this.db.transaction([CURSORS, OUTBOX], "readonly");
    const range = IDBKeyRange.bound([uid, ""], [uid, []]); // every convId of uid
    const cursorRecords = result<CursorRecord[]>(transaction.objectStore(CURSORS).getAll(range));
    // An index lists equal keys in primary key order: the order the sends were added.
    const outboxRecords = result<OutboxRecord[]>(
      transaction.objectStore(OUTBOX).index(OUTBOX_BY_UID).getAll(uid),
    );
    const [cursors, outbox] = await Promise.all([cursorRecords, outboxRecords]);
    return {
      cursors: new Map(cursors.map((record) => [record.convId, record.seq])),
      outbox: outbox.map((record) => copyPendingSend(record.send)),
    };
  }

  async saveCursors(uid: string, cursors: ReadonlyMap<string, number>): Promise<void> {
    const transaction = this.db.transaction(CURSORS, "readwrite");
    const store = transaction.objectStore(CURSORS);
    for (const [convId, seq] of cursors) {
      const read = store.get([uid, convId]);
      read.onsuccess = () => {
        const saved = read.result as CursorRecord | undefined;
        if (saved && saved.seq >= seq) return; // never backwards
        store.put({ uid, convId, seq } satisfies CursorRecord);
      };
    }
    await committed(transaction);
  }

  async addPending(uid: string, send: PendingSend): Promise<void> {
    const transaction = this.db.transaction(OUTBOX, "readwrite");
    const record: OutboxRecord = {
      uid,
      clientMsgId: send.clientMsgId,
      send: copyPendingSend(send),
    };
    transaction.objectStore(OUTBOX).add(record);
    await committed(transaction);
  }

  async removePending(uid: string, clientMsgId: string): Promise<void> {
    const transaction = this.db.transaction(OUTBOX, "readwrite");
    const store = transaction.objectStore(OUTBOX);
    const key = store.index(OUTBOX_BY_ID).getKey([uid, clientMsgId]);
    key.onsuccess = () => {
      if (key.result !== undefined) store.delete(key.result);
    };
    await committed(transaction);
  }
}
