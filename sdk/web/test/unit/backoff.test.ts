import assert from "node:assert/strict";
import { test } from "node:test";
import { Backoff } from "../../src/backoff.js";
import { SendWindow } from "../../src/send_window.js";

test("backoff ceilings double from the initial wait up to the maximum, with full jitter", () => {
  const highest = new Backoff(250, 2000, () => 0.999999);
  assert.deepEqual(
    Array.from({ length: 6 }, () => highest.nextDelayMs()),
    [250, 500, 1000, 2000, 2000, 2000],
  );
  const lowest = new Backoff(250, 2000, () => 0);
  assert.deepEqual([lowest.nextDelayMs(), lowest.nextDelayMs()], [0, 0]);
});

test("backoff reset starts again from the initial ceiling", () => {
  const backoff = new Backoff(100, 10_000, () => 0.999999);
  backoff.nextDelayMs();
  backoff.nextDelayMs();
  assert.equal(backoff.attempt, 2);
  backoff.reset();
  assert.equal(backoff.nextDelayMs(), 100);
});

test("a retry hint waits between the hint and twice the hint", () => {
  assert.equal(new Backoff(1, 1, () => 0).afterHintMs(500), 500);
  assert.equal(new Backoff(1, 1, () => 0.999999).afterHintMs(500), 1000);
});

test("the send window halves once per burst of refusals and widens by one per window of acks", () => {
  const window = new SendWindow(8);
  window.onRefused(1000, 500);
  assert.equal(window.size, 4);
  window.onRefused(1200, 500); // same burst: answers to sends made before the halving
  assert.equal(window.size, 4);
  window.onRefused(1600, 500);
  assert.equal(window.size, 2);
  window.onAcked();
  assert.equal(window.size, 2);
  window.onAcked();
  assert.equal(window.size, 3);
  for (let i = 0; i < 100; ++i) window.onAcked();
  assert.equal(window.size, 8, "never above the maximum");
});
