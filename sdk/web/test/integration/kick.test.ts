import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Code } from "../../src/status.js";
import { ImServer } from "../support/im_server.js";
import { LiveClient, singleChat, uniqueUid } from "../support/live_client.js";

let server: ImServer;
before(async () => {
  server = await ImServer.start();
});
after(async () => {
  await server?.stop();
});

// The same uid and device logging in again kicks the first connection: that client reports
// "kicked" with the reason and stays off; the new one keeps working.
test(
  "a second login of the same device kicks the first, which stays off",
  { timeout: 120_000 },
  async () => {
    const uid = uniqueUid("alice");
    const peer = uniqueUid("bob");
    const first = new LiveClient(uid, [server.url], { device: "phone" });
    const second = new LiveClient(uid, [server.url], { device: "phone" });
    try {
      await first.startAndWaitConnected();
      await second.startAndWaitConnected();
      assert.ok(
        await first.waitFor(() => first.state === "kicked", 15_000),
        JSON.stringify(first.states),
      );
      assert.match(first.states.at(-1)!.message, /LOGGED_IN_ELSEWHERE/);
      await new Promise((resolve) => setTimeout(resolve, 3000));
      assert.equal(first.state, "kicked", "no reconnect after a kick");
      assert.equal(first.connects, 1);
      assert.equal(second.state, "connected", "the newer login is not kicked back");

      const id = second.client.sendTo(peer, "still here");
      assert.ok(await second.waitFor(() => second.results.has(id), 15_000));
      assert.equal(second.results.get(id)![0]!.status.code, Code.OK);
      assert.deepEqual(second.bodies(singleChat(uid, peer)), ["still here"]);
    } finally {
      await first.client.close();
      await second.client.close();
    }
  },
);
