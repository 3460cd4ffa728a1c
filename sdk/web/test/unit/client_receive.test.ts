import assert from "node:assert/strict";
import { test } from "node:test";
import { Code } from "../../src/status.js";
import { login, makeClient, started, wireMessage } from "../support/client_harness.js";

const CONV = "s:alice:bob";

test("pushes are delivered in seq order, once; a gap is synced after gapWaitMs", async () => {
  const harness = makeClient();
  await started(harness);
  const gw = await login(harness, [{ convId: CONV, maxSeq: 0, deliveredSeq: 0 }]);
  gw.push({
    case: "messagePush",
    value: { messages: [wireMessage(CONV, 1), wireMessage(CONV, 2)] },
  });
  gw.push({ case: "messagePush", value: { messages: [wireMessage(CONV, 2)] } }); // a repeat
  gw.push({ case: "messagePush", value: { messages: [wireMessage(CONV, 5)] } }); // 3, 4 missing
  await harness.clock.advance(0);
  assert.deepEqual(harness.events.seqs(CONV), [1, 2]);
  await harness.clock.advance(250);
  assert.equal(gw.framesOf("syncReq").length, 0, "the missing push may still come");
  await harness.clock.advance(100);
  const sync = gw.lastOf("syncReq");
  assert.equal(sync.body.case === "syncReq" && sync.body.value.afterSeq, 2n);
  gw.push(
    {
      case: "syncResp",
      value: {
        convId: CONV,
        messages: [wireMessage(CONV, 3), wireMessage(CONV, 4), wireMessage(CONV, 5)],
        maxSeq: 5n,
      },
    },
    sync.id,
  );
  await harness.clock.advance(0);
  assert.deepEqual(harness.events.seqs(CONV), [1, 2, 3, 4, 5]);
  await harness.client.close();
});

test("after login, a conversation that moved while away is synced from the device's cursor", async () => {
  const harness = makeClient();
  await started(harness);
  const gw = await login(harness, [{ convId: "g:team", maxSeq: 3, deliveredSeq: 1 }]);
  const sync = gw.lastOf("syncReq");
  assert.equal(sync.body.case === "syncReq" && sync.body.value.afterSeq, 1n);
  gw.push(
    {
      case: "syncResp",
      value: {
        convId: "g:team",
        messages: [wireMessage("g:team", 3)],
        holes: [{ first: 2n, last: 2n }], // allocated, never stored
        maxSeq: 3n,
      },
    },
    sync.id,
  );
  await harness.clock.advance(0);
  assert.deepEqual(harness.events.seqs("g:team"), [3]);
  await harness.client.close();
});

test("delivered cursors are acked in batches: one AckReq per interval with the latest cursors", async () => {
  const harness = makeClient({ ackIntervalMs: 500 });
  await started(harness);
  const gw = await login(harness, [
    { convId: CONV, maxSeq: 0, deliveredSeq: 0 },
    { convId: "g:1", maxSeq: 0, deliveredSeq: 0 },
  ]);
  for (let seq = 1; seq <= 20; ++seq) {
    gw.push({ case: "messagePush", value: { messages: [wireMessage(CONV, seq)] } });
    if (seq % 2 === 0)
      gw.push({ case: "messagePush", value: { messages: [wireMessage("g:1", seq / 2)] } });
    await harness.clock.advance(10);
  }
  await harness.clock.advance(500);
  const acks = gw
    .framesOf("ackReq")
    .map((frame) =>
      frame.body.case === "ackReq"
        ? frame.body.value.cursors.map((cursor) => `${cursor.convId}=${cursor.seq}`)
        : [],
    );
  assert.ok(acks.length <= 2, `${acks.length} acks for 30 messages in 0.7 s`);
  assert.deepEqual(
    acks
      .flat()
      .filter((c) => c.startsWith(CONV))
      .pop(),
    `${CONV}=20`,
  );
  assert.deepEqual(
    acks
      .flat()
      .filter((c) => c.startsWith("g:1"))
      .pop(),
    "g:1=10",
  );
  await harness.clock.advance(2000);
  assert.equal(gw.framesOf("ackReq").length, acks.length, "nothing moved: no more acks");
  await harness.client.close();
});

test("read receipts and typing reach the listener", async () => {
  const harness = makeClient();
  await started(harness);
  const gw = await login(harness);
  gw.push({ case: "readPush", value: { convId: CONV, reader: "bob", readSeq: 7n } });
  gw.push({
    case: "receiptsPush",
    value: { receipts: [{ convId: "g:1", reader: "carol", readSeq: 3n }] },
  });
  gw.push({ case: "typingPush", value: { convId: CONV, uid: "bob" } });
  await harness.clock.advance(0);
  assert.deepEqual(harness.events.receipts, [
    { convId: CONV, reader: "bob", readSeq: 7 },
    { convId: "g:1", reader: "carol", readSeq: 3 },
  ]);
  assert.deepEqual(harness.events.typing, [{ convId: CONV, uid: "bob" }]);
  await harness.client.close();
});

test("bytes that are not a Frame, or a text message, end the connection; it reconnects", async () => {
  const harness = makeClient();
  await started(harness);
  const gw = await login(harness);
  gw.pushBytes(new Uint8Array([0xff, 0xff, 0xff]));
  assert.equal(gw.closedByClient?.code, 1007);
  await harness.clock.advance(1000);
  const second = await login(harness);
  second.sendText();
  assert.equal(second.closedByClient?.code, 1002);
  await harness.clock.advance(0);
  assert.equal(harness.client.state, "connecting");
  assert.equal(harness.events.states.at(-1)?.code, Code.UNAVAILABLE);
  await harness.client.close();
});
