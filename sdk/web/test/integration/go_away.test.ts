import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Code } from "../../src/status.js";
import { ImServer } from "../support/im_server.js";
import { LiveClient, uniqueUid } from "../support/live_client.js";

let draining: ImServer;
let next: ImServer;
before(async () => {
  [draining, next] = [await ImServer.start({ drainTimeoutMs: 5000 }), await ImServer.start()];
});
after(async () => {
  await draining?.stop();
  await next?.stop();
});

// A draining gateway (SIGTERM) sends GoAway: the client leaves at once, not as after a failure,
// and logs in at the next gateway after the hint, where its sends go on.
test("GoAway moves the client to the next gateway", { timeout: 120_000 }, async () => {
  const alice = new LiveClient(uniqueUid("alice"), [draining.url, next.url]);
  try {
    await alice.startAndWaitConnected();
    draining.drain();
    const moved = await alice.waitFor(
      () => alice.connects === 2 && alice.state === "connected",
      30_000,
    );
    assert.ok(moved, JSON.stringify(alice.states));
    const reasons = alice.states.filter((s) => s.state === "connecting").map((s) => s.message);
    assert.ok(
      reasons.some((reason) => /GoAway/.test(reason)),
      `left for GoAway, not a failure: ${JSON.stringify(reasons)}`,
    );
    const id = alice.client.sendTo(uniqueUid("bob"), "after the move");
    assert.ok(await alice.waitFor(() => alice.results.has(id), 15_000));
    assert.equal(alice.results.get(id)![0]!.status.code, Code.OK);
  } finally {
    await alice.client.close();
  }
});
