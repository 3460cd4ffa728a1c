import assert from "node:assert/strict";
import { test } from "node:test";
import { Outbox } from "../../src/outbox.js";
import type { PendingSend } from "../../src/pending_send.js";

function pending(id: string, deadlineMs = 0): PendingSend {
  return {
    clientMsgId: id,
    convId: "s:a:b",
    toUid: "",
    type: 1,
    body: new Uint8Array([1]),
    refSeq: 0,
    createdMs: 0,
    deadlineMs,
  };
}

const ids = (sends: PendingSend[]) => sends.map((send) => send.clientMsgId);

test("the outbox hands out sends oldest first, up to the limit, each once while in flight", () => {
  const outbox = new Outbox();
  for (const id of ["a", "b", "c"]) assert.ok(outbox.add(pending(id)));
  assert.deepEqual(ids(outbox.takeReady(0, 2)), ["a", "b"]);
  assert.equal(outbox.inFlight, 2);
  assert.deepEqual(ids(outbox.takeReady(0, 10)), ["c"]);
  assert.deepEqual(ids(outbox.takeReady(0, 10)), []);
});

test("a clientMsgId is held once", () => {
  const outbox = new Outbox();
  assert.ok(outbox.add(pending("a")));
  assert.equal(outbox.add(pending("a")), false);
  assert.equal(outbox.size, 1);
});

test("a lost connection requeues everything in flight with the same ids, in the original order", () => {
  const outbox = new Outbox();
  for (const id of ["a", "b", "c"]) outbox.add(pending(id));
  outbox.takeReady(0, 3);
  outbox.requeueAll();
  assert.equal(outbox.inFlight, 0);
  assert.deepEqual(ids(outbox.takeReady(0, 3)), ["a", "b", "c"]);
});

test("a requeued send waits for its retry time", () => {
  const outbox = new Outbox();
  outbox.add(pending("a"));
  outbox.takeReady(0, 1);
  outbox.requeue("a", 500);
  assert.deepEqual(ids(outbox.takeReady(499, 1)), []);
  assert.deepEqual(ids(outbox.takeReady(500, 1)), ["a"]);
});

test("removing a send ends it; removing it again finds nothing", () => {
  const outbox = new Outbox();
  outbox.add(pending("a"));
  outbox.takeReady(0, 1);
  assert.equal(outbox.remove("a")?.clientMsgId, "a");
  assert.equal(outbox.inFlight, 0);
  assert.equal(outbox.remove("a"), undefined);
});

test("only queued sends past their deadline expire; one in flight waits for its answer", () => {
  const outbox = new Outbox();
  outbox.add(pending("forever"));
  outbox.add(pending("on-wire", 100));
  outbox.add(pending("queued", 100));
  outbox.add(pending("later", 200));
  outbox.takeReady(0, 2); // "forever" and "on-wire"
  assert.deepEqual(ids(outbox.takeExpired(150)), ["queued"]);
  assert.equal(outbox.size, 3);
  assert.ok(outbox.isInFlight("on-wire"));
});
