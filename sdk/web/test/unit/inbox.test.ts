import assert from "node:assert/strict";
import { test } from "node:test";
import { Inbox } from "../../src/inbox.js";
import type { Conversation, Message } from "../../src/types.js";

const CONV = "s:a:b";
const GAP_WAIT = 300;

function message(seq: number, convId = CONV): Message {
  return {
    convId,
    seq,
    msgId: String(seq),
    sender: "b",
    clientMsgId: "",
    type: 1,
    body: new Uint8Array(),
    createdMs: 0,
    refSeq: 0,
    recalled: false,
    editedMs: 0,
  };
}

function view(convId: string, maxSeq: number, deliveredSeq: number): Conversation {
  return {
    convId,
    maxSeq,
    deliveredSeq,
    readSeq: 0,
    unread: 0,
    peerReadSeq: 0,
    updatedMs: 0,
    lastMessage: null,
  };
}

function boundInbox(): Inbox {
  const inbox = new Inbox(GAP_WAIT);
  inbox.bind([view(CONV, 0, 0)], 0);
  return inbox;
}

test("a skipped seq waits gapWaitMs for the missing push, then asks a sync from the cursor", () => {
  const inbox = boundInbox();
  assert.deepEqual(
    inbox.receive(CONV, [message(1)], 0)?.messages.map((m) => m.seq),
    [1],
  );
  assert.equal(inbox.receive(CONV, [message(3)], 100), null);
  assert.deepEqual(inbox.takeDueSyncs(399), []);
  assert.deepEqual(inbox.takeDueSyncs(400), [{ convId: CONV, afterSeq: 1 }]);
  assert.deepEqual(inbox.takeDueSyncs(400), [], "one sync at a time per conversation");
  const delivery = inbox.onSynced(
    CONV,
    { messages: [message(2), message(3)], holes: [], hasMore: false, maxSeq: 3 },
    450,
  );
  assert.deepEqual(
    delivery?.messages.map((m) => m.seq),
    [2, 3],
  );
  assert.deepEqual(inbox.takeDueSyncs(10_000), []);
});

test("a gap filled by a late push needs no sync", () => {
  const inbox = boundInbox();
  inbox.receive(CONV, [message(2)], 0);
  assert.deepEqual(
    inbox.receive(CONV, [message(1)], 100)?.messages.map((m) => m.seq),
    [1, 2],
  );
  assert.deepEqual(inbox.takeDueSyncs(10_000), []);
});

test("after login every conversation behind the server is synced, from the saved cursor", () => {
  const inbox = new Inbox(GAP_WAIT);
  inbox.restore(new Map([["g:1", 5]]));
  inbox.bind([view("g:1", 9, 2), view(CONV, 4, 4), view("g:2", 3, 1)], 0);
  assert.deepEqual(inbox.takeDueSyncs(0), [
    { convId: "g:1", afterSeq: 5 }, // the device's own cursor, not the server's
    { convId: "g:2", afterSeq: 1 }, // a new device starts at the server's cursor
  ]);
});

test("pushes before the first bind wait for it, and start at the server's cursor", () => {
  const inbox = new Inbox(GAP_WAIT);
  assert.equal(inbox.receive(CONV, [message(7), message(8)], 0), null);
  const deliveries = inbox.bind([view(CONV, 8, 6)], 0);
  assert.deepEqual(
    deliveries.map((d) => d.messages.map((m) => m.seq)),
    [[7, 8]],
  );
});

test("a conversation first seen in a push after the bind is new: it starts at 0", () => {
  const inbox = boundInbox();
  assert.equal(inbox.receive("g:new", [message(2, "g:new")], 0), null);
  assert.deepEqual(inbox.takeDueSyncs(GAP_WAIT), [{ convId: "g:new", afterSeq: 0 }]);
});

test("holes in a sync page are skipped so the conversation never stalls", () => {
  const inbox = boundInbox();
  inbox.receive(CONV, [message(5)], 0);
  const syncs = inbox.takeDueSyncs(GAP_WAIT);
  assert.equal(syncs.length, 1);
  const delivery = inbox.onSynced(
    CONV,
    {
      messages: [message(1), message(4)],
      holes: [{ first: 2, last: 3 }],
      hasMore: false,
      maxSeq: 5,
    },
    GAP_WAIT,
  );
  assert.deepEqual(
    delivery?.messages.map((m) => m.seq),
    [1, 4, 5],
  );
  assert.equal(inbox.delivered(CONV), 5);
});

test("a page with more behind it is followed at once; one that made no progress waits", () => {
  const inbox = new Inbox(GAP_WAIT);
  inbox.bind([view(CONV, 10, 0)], 0);
  inbox.takeDueSyncs(0);
  inbox.onSynced(CONV, { messages: [message(1)], holes: [], hasMore: true, maxSeq: 10 }, 5);
  assert.deepEqual(inbox.takeDueSyncs(5), [{ convId: CONV, afterSeq: 1 }]);
  inbox.onSynced(CONV, { messages: [], holes: [], hasMore: true, maxSeq: 10 }, 6);
  assert.deepEqual(inbox.takeDueSyncs(6), []);
  assert.equal(inbox.takeDueSyncs(6 + GAP_WAIT).length, 1);
});

test("a sync refused with NOT_MEMBER stops syncing that conversation; others retry later", () => {
  const inbox = new Inbox(GAP_WAIT);
  inbox.bind([view("g:gone", 5, 0), view(CONV, 5, 0)], 0);
  inbox.takeDueSyncs(0);
  inbox.onSyncFailed("g:gone", false, 0);
  inbox.onSyncFailed(CONV, true, 0);
  assert.deepEqual(inbox.takeDueSyncs(4 * GAP_WAIT - 1), []);
  assert.deepEqual(inbox.takeDueSyncs(4 * GAP_WAIT), [{ convId: CONV, afterSeq: 0 }]);
});

test("acks carry only cursors that moved since the last batch", () => {
  const inbox = boundInbox();
  inbox.receive(CONV, [message(1), message(2)], 0);
  inbox.receive("g:1", [message(1, "g:1")], 0);
  assert.deepEqual(
    [...inbox.takeMovedCursors()],
    [
      [CONV, 2],
      ["g:1", 1],
    ],
  );
  assert.deepEqual([...inbox.takeMovedCursors()], []);
  inbox.receive(CONV, [message(3)], 0);
  assert.deepEqual([...inbox.takeMovedCursors()], [[CONV, 3]]);
});

test("a restored cursor is not acked again", () => {
  const inbox = new Inbox(GAP_WAIT);
  inbox.restore(new Map([[CONV, 4]]));
  inbox.bind([view(CONV, 4, 2)], 0);
  assert.deepEqual([...inbox.takeMovedCursors()], []);
});
