import assert from "node:assert/strict";
import { test } from "node:test";
import { InMemoryStateStore } from "../../src/in_memory_state_store.js";
import { Code } from "../../src/status.js";
import type { Frame } from "../../src/gen/im/v1/client_pb.js";
import type { FakeConnection } from "../support/fake_transport.js";
import { login, makeClient, started } from "../support/client_harness.js";

const CONV = "s:alice:bob";

function sendReqOf(frame: Frame) {
  if (frame.body.case !== "sendReq") throw new Error(`not a SendReq: ${frame.body.case}`);
  return frame.body.value;
}

function answerSend(gw: FakeConnection, frame: Frame, code: Code, seq = 0, retryAfterMs = 0) {
  const req = sendReqOf(frame);
  gw.push(
    {
      case: "sendResp",
      value: {
        status: { code, retryAfterMs },
        convId: CONV,
        seq: BigInt(seq),
        msgId: 77n,
        clientMsgId: req.clientMsgId,
      },
    },
    frame.id,
  );
}

test("a send survives a lost connection and a retryable refusal, with one id and one result", async () => {
  const harness = makeClient();
  await started(harness);
  let gw = await login(harness, [{ convId: CONV, maxSeq: 0, deliveredSeq: 0 }]);
  const id = harness.client.send(CONV, "hello");
  await harness.clock.advance(0);
  assert.equal(sendReqOf(gw.lastOf("sendReq")).clientMsgId, id);
  gw.closeFromServer(1006, ""); // cut before the answer: did the server store it? unknown
  await harness.clock.advance(1000);
  gw = await login(harness, [{ convId: CONV, maxSeq: 0, deliveredSeq: 0 }]);
  await harness.clock.advance(0);
  const retry = gw.lastOf("sendReq");
  assert.equal(sendReqOf(retry).clientMsgId, id, "the same clientMsgId: the server dedupes");
  answerSend(gw, retry, Code.UNAVAILABLE);
  await harness.clock.advance(0);
  assert.equal(harness.events.results.length, 0, "a retryable refusal is not an outcome");
  await harness.clock.advance(1500);
  const third = gw.framesOf("sendReq");
  assert.equal(third.length, 2);
  answerSend(gw, third[1]!, Code.OK, 1);
  await harness.clock.advance(1000);
  assert.equal(harness.events.results.length, 1);
  assert.equal(harness.events.results[0]!.status.code, Code.OK);
  assert.equal(harness.events.results[0]!.seq, 1);
  assert.deepEqual(harness.events.seqs(CONV), [1], "the device's own message joins the stream");
  assert.equal(new TextDecoder().decode(harness.events.messages[0]!.body), "hello");
  await harness.client.close();
});

test("a send refused for good (NOT_MEMBER) has one failed result and is not retried", async () => {
  const harness = makeClient();
  await started(harness);
  const gw = await login(harness);
  harness.client.send("g:closed", "x");
  await harness.clock.advance(0);
  answerSend(gw, gw.lastOf("sendReq"), Code.NOT_MEMBER);
  await harness.clock.advance(5000);
  assert.equal(gw.framesOf("sendReq").length, 1);
  assert.deepEqual(
    harness.events.results.map((r) => r.status.code),
    [Code.NOT_MEMBER],
  );
  await harness.client.close();
});

test("an overload refusal is retried after the hint and halves the sends in flight", async () => {
  const harness = makeClient({ maxSendsInFlight: 4 });
  await started(harness);
  const gw = await login(harness);
  for (let i = 0; i < 6; ++i) harness.client.send(CONV, `m${i}`);
  await harness.clock.advance(0);
  const first = gw.framesOf("sendReq");
  assert.equal(first.length, 4, "at most maxSendsInFlight on the wire");
  answerSend(gw, first[0]!, Code.OK, 1);
  answerSend(gw, first[1]!, Code.OK, 2);
  await harness.clock.advance(0);
  first.splice(0, 2, ...gw.framesOf("sendReq").slice(4));
  assert.equal(first.length, 4, "the last two took the room");
  for (const frame of first) answerSend(gw, frame, Code.RESOURCE_EXHAUSTED, 0, 500);
  await harness.clock.advance(499);
  assert.equal(gw.framesOf("sendReq").length, 6, "nothing before the hint");
  await harness.clock.advance(600);
  assert.equal(gw.framesOf("sendReq").length, 8, "the window is halved to 2");
  await harness.client.close();
});

test("sends wait offline; with sendTimeoutMs one not confirmed in time fails once", async () => {
  const harness = makeClient({ sendTimeoutMs: 3000 });
  harness.client.send(CONV, "never connected");
  await harness.clock.advance(2900);
  assert.equal(harness.events.results.length, 0);
  await harness.clock.advance(200);
  assert.deepEqual(
    harness.events.results.map((r) => r.status.code),
    [Code.DEADLINE_EXCEEDED],
  );
  await harness.client.close();
});

test("invalid sends fail at once: no conversation, a body above the frame limit", async () => {
  const harness = makeClient({ maxFrameBytes: 2048 });
  harness.client.send("", "x");
  harness.client.send(CONV, new Uint8Array(4096));
  await harness.clock.advance(0);
  assert.deepEqual(
    harness.events.results.map((r) => r.status.code),
    [Code.INVALID_ARGUMENT, Code.BODY_TOO_LARGE],
  );
  await harness.client.close();
});

test("unsent messages in the store are sent by the next client with their ids", async () => {
  const store = new InMemoryStateStore();
  const before = makeClient({}, store);
  const id = before.client.sendTo("bob", "from the last run");
  await before.clock.advance(0);
  await before.client.close();

  const after = makeClient({}, store);
  await started(after);
  const gw = await login(after);
  await after.clock.advance(0);
  const resent = sendReqOf(gw.lastOf("sendReq"));
  assert.equal(resent.clientMsgId, id);
  assert.equal(resent.toUid, "bob");
  answerSend(gw, gw.lastOf("sendReq"), Code.OK, 3);
  await after.clock.advance(0);
  assert.equal((await store.load("alice")).outbox.length, 0, "confirmed: gone from the store");
  await after.client.close();
});

test("cursors saved on close start the next client where this one stopped", async () => {
  const store = new InMemoryStateStore();
  const before = makeClient({}, store);
  await started(before);
  const gw = await login(before, [{ convId: CONV, maxSeq: 2, deliveredSeq: 0 }]);
  const sync = gw.lastOf("syncReq");
  gw.push(
    {
      case: "syncResp",
      value: {
        convId: CONV,
        messages: [1, 2].map((seq) => ({ convId: CONV, seq: BigInt(seq), sender: "bob" })),
        maxSeq: 2n,
      },
    },
    sync.id,
  );
  await before.clock.advance(0);
  await before.client.close();
  assert.equal((await store.load("alice")).cursors.get(CONV), 2);

  const after = makeClient({}, store);
  await started(after);
  const gw2 = await login(after, [{ convId: CONV, maxSeq: 3, deliveredSeq: 0 }]);
  const next = gw2.lastOf("syncReq");
  assert.equal(next.body.case === "syncReq" && next.body.value.afterSeq, 2n);
  await after.client.close();
});

test("a send after close() still has its one result: CANCELLED", async () => {
  const harness = makeClient();
  await harness.client.close();
  harness.client.send(CONV, "too late");
  await harness.clock.advance(0);
  assert.deepEqual(
    harness.events.results.map((r) => r.status.code),
    [Code.CANCELLED],
  );
});
