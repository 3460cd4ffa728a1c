import "fake-indexeddb/auto";
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { InMemoryStateStore } from "../../src/in_memory_state_store.js";
import { IndexedDbStateStore } from "../../src/indexed_db_state_store.js";
import type { PendingSend } from "../../src/pending_send.js";
import type { StateStore } from "../../src/state_store.js";

function pending(id: string, body = "hi"): PendingSend {
  return {
    clientMsgId: id,
    convId: "s:alice:bob",
    toUid: "",
    type: 1,
    body: new TextEncoder().encode(body),
    refSeq: 0,
    createdMs: 5,
    deadlineMs: 0,
  };
}

let databases = 0;

// One contract, every backend (as the C++ SDK's state stores): what a restart must find.
const backends: [string, () => Promise<StateStore>][] = [
  ["InMemoryStateStore", async () => new InMemoryStateStore()],
  ["IndexedDbStateStore", () => IndexedDbStateStore.open(`im-test-${++databases}`, indexedDB)],
];

for (const [name, open] of backends) {
  describe(name, () => {
    test("a new account has nothing saved", async () => {
      const saved = await (await open()).load("alice");
      assert.equal(saved.cursors.size, 0);
      assert.deepEqual(saved.outbox, []);
    });

    test("the outbox comes back in the order the sends were made, bodies intact", async () => {
      const store = await open();
      for (const id of ["c", "a", "b"]) await store.addPending("alice", pending(id, `body-${id}`));
      const saved = await store.load("alice");
      assert.deepEqual(
        saved.outbox.map((send) => send.clientMsgId),
        ["c", "a", "b"],
      );
      assert.equal(new TextDecoder().decode(saved.outbox[1]!.body), "body-a");
      assert.deepEqual({ ...saved.outbox[0]!, body: null }, { ...pending("c"), body: null });
    });

    test("a removed send is gone; removing an unknown one is harmless", async () => {
      const store = await open();
      await store.addPending("alice", pending("a"));
      await store.addPending("alice", pending("b"));
      await store.removePending("alice", "a");
      await store.removePending("alice", "never-added");
      const saved = await store.load("alice");
      assert.deepEqual(
        saved.outbox.map((send) => send.clientMsgId),
        ["b"],
      );
    });

    test("cursors are upserted and never move backwards", async () => {
      const store = await open();
      await store.saveCursors(
        "alice",
        new Map([
          ["s:alice:bob", 5],
          ["g:1", 2],
        ]),
      );
      await store.saveCursors(
        "alice",
        new Map([
          ["s:alice:bob", 3],
          ["g:1", 9],
        ]),
      );
      const saved = await store.load("alice");
      assert.deepEqual(Object.fromEntries(saved.cursors), { "s:alice:bob": 5, "g:1": 9 });
    });

    test("accounts sharing a store see only their own state", async () => {
      const store = await open();
      await store.addPending("alice", pending("a"));
      await store.saveCursors("alice", new Map([["g:1", 4]]));
      await store.addPending("bob", pending("b"));
      const bob = await store.load("bob");
      assert.deepEqual(
        bob.outbox.map((send) => send.clientMsgId),
        ["b"],
      );
      assert.equal(bob.cursors.size, 0);
    });
  });
}
