import assert from "node:assert/strict";
import { test } from "node:test";
import { ConversationStream } from "../../src/conversation_stream.js";
import type { Message } from "../../src/types.js";

function message(seq: number): Message {
  return {
    convId: "s:a:b",
    seq,
    msgId: String(seq),
    sender: "a",
    clientMsgId: "",
    type: 1,
    body: new Uint8Array(),
    createdMs: 0,
    refSeq: 0,
    recalled: false,
    editedMs: 0,
  };
}

const seqs = (messages: Message[]) => messages.map((m) => m.seq);
const many = (...list: number[]) => list.map(message);

test("messages in order are delivered at once", () => {
  const stream = new ConversationStream(0);
  assert.deepEqual(seqs(stream.add(many(1, 2, 3))), [1, 2, 3]);
  assert.equal(stream.delivered, 3);
  assert.equal(stream.hasGap, false);
});

test("out of order messages wait for the missing one, then come out in seq order", () => {
  const stream = new ConversationStream(0);
  assert.deepEqual(seqs(stream.add(many(3, 5))), []);
  assert.ok(stream.hasGap);
  assert.equal(stream.highestSeen, 5);
  assert.deepEqual(seqs(stream.add(many(2))), []);
  assert.deepEqual(seqs(stream.add(many(4, 2))), []);
  assert.equal(stream.delivered, 0);
  assert.deepEqual(seqs(stream.add(many(1))), [1, 2, 3, 4, 5]);
  assert.equal(stream.hasGap, false);
});

test("out of order messages come out in seq order once the lowest arrives", () => {
  const stream = new ConversationStream(0);
  stream.add(many(4, 2, 3));
  assert.deepEqual(seqs(stream.add(many(1))), [1, 2, 3, 4]);
  assert.equal(stream.hasGap, false);
});

test("duplicates are dropped: delivered ones and repeats of held ones", () => {
  const stream = new ConversationStream(0);
  stream.add(many(1, 2));
  assert.deepEqual(seqs(stream.add(many(1, 2))), []);
  stream.add(many(4));
  stream.add(many(4));
  assert.equal(stream.heldCount, 1);
  assert.deepEqual(seqs(stream.add(many(3, 3))), [3, 4]);
});

test("a stream starts after its cursor", () => {
  const stream = new ConversationStream(10);
  assert.deepEqual(seqs(stream.add(many(9, 10, 11))), [11]);
});

test("a reported hole is skipped, and what waited behind it comes out", () => {
  const stream = new ConversationStream(2);
  stream.add(many(6, 7));
  assert.deepEqual(seqs(stream.addHole(3, 5)), [6, 7]);
  assert.equal(stream.delivered, 7);
});

test("a hole that starts below the cursor still moves it past its end", () => {
  const stream = new ConversationStream(4);
  assert.deepEqual(seqs(stream.addHole(1, 6)), []);
  assert.equal(stream.delivered, 6);
  assert.deepEqual(seqs(stream.addHole(1, 3)), []);
  assert.equal(stream.delivered, 6);
});

test("a message inside a hole is dropped when the hole is passed", () => {
  const stream = new ConversationStream(0);
  stream.add(many(3, 6));
  assert.deepEqual(seqs(stream.addHole(1, 4)), []);
  assert.equal(stream.delivered, 4);
  assert.ok(stream.hasGap, "6 waits for 5");
  assert.deepEqual(seqs(stream.add(many(5))), [5, 6]);
});
