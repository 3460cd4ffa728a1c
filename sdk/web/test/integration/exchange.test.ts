import assert from "node:assert/strict";
import { after, before, describe, test, type TestContext } from "node:test";
import { Code } from "../../src/status.js";
import { ImCluster } from "../support/im_cluster.js";
import { ImServer } from "../support/im_server.js";
import { LiveClient, contiguityError, singleChat, uniqueUid } from "../support/live_client.js";
import { TcpProxy } from "../support/tcp_proxy.js";

const PER_SIDE = 1000;

// Two clients exchange 2,000 messages (1,000 each way) through TCP proxies that cut every
// connection several times: both show all 2,000 exactly once, in seq order with nothing
// missing, and every send is reported exactly once, as sent (sdk_test.cc, the same scenario).
// On the embedded node, and on the cluster with one client on each gateway (as the C++ SDK's
// tests run on both deployments).
describe("on the embedded node", () => {
  let server: ImServer;
  before(async () => {
    server = await ImServer.start();
  });
  after(async () => {
    await server?.stop();
  });
  test("2,000 messages survive connections cut again and again", { timeout: 300_000 }, (t) =>
    exchangeThroughCuts(t, [server.wsPort, server.wsPort]),
  );
});

describe("on the cluster (Redis, MariaDB, Kafka; two gateways)", () => {
  let cluster: ImCluster;
  before(async () => {
    cluster = await ImCluster.start();
  });
  after(async () => {
    await cluster?.stop();
  });
  test("2,000 messages survive connections cut again and again", { timeout: 300_000 }, (t) =>
    exchangeThroughCuts(t, [cluster.wsPorts[0]!, cluster.wsPorts[1]!]),
  );
});

async function exchangeThroughCuts(t: TestContext, wsPorts: [number, number]): Promise<void> {
  const proxies = [await TcpProxy.start(wsPorts[0]), await TcpProxy.start(wsPorts[1])];
  const urls = proxies.map((proxy) => proxy.url);
  const alice = new LiveClient(uniqueUid("alice"), urls, { reconnectMaxMs: 2000 });
  const bob = new LiveClient(uniqueUid("bob"), [urls[1]!, urls[0]!], { reconnectMaxMs: 2000 });
  const conv = singleChat(alice.uid, bob.uid);
  let cutting = true;
  try {
    await alice.startAndWaitConnected();
    await bob.startAndWaitConnected();
    const cutter = (async () => {
      while (cutting) {
        await new Promise((resolve) => setTimeout(resolve, 200 + Math.random() * 800));
        if (cutting) proxies[Math.random() < 0.5 ? 0 : 1]!.cutAll();
      }
    })();
    const aliceBodies: string[] = [];
    const bobBodies: string[] = [];
    for (let i = 0; i < PER_SIDE; ++i) {
      aliceBodies.push(`a${i}`);
      bobBodies.push(`b${i}`);
      alice.client.sendTo(bob.uid, aliceBodies[i]!);
      bob.client.sendTo(alice.uid, bobBodies[i]!);
      // Paced over about 8 s, so that the cuts land in the middle of the exchange.
      await new Promise((resolve) => setTimeout(resolve, 8));
    }
    const complete = (side: LiveClient) => () =>
      side.results.size >= PER_SIDE && side.messages(conv).length >= 2 * PER_SIDE;
    const aliceDone = await alice.waitFor(complete(alice), 180_000);
    const bobDone = await bob.waitFor(complete(bob), 60_000);
    cutting = false;
    await cutter;
    const cuts = proxies[0]!.connectionsCut + proxies[1]!.connectionsCut;
    assert.ok(
      aliceDone,
      `alice: ${alice.results.size} results, shows ${alice.messages(conv).length}`,
    );
    assert.ok(bobDone, `bob: ${bob.results.size} results, shows ${bob.messages(conv).length}`);
    t.diagnostic(
      `${cuts} connections cut; alice logged in ${alice.connects} times, bob ${bob.connects}`,
    );
    assert.ok(cuts >= 6, `only ${cuts} connections cut`);
    assert.ok(alice.connects >= 3 && bob.connects >= 3, "the cuts forced reconnects");
    // Let a late duplicate, if the client let one through, arrive before the count is checked.
    await new Promise((resolve) => setTimeout(resolve, 1500));

    for (const side of [alice, bob]) {
      const shown = side.messages(conv);
      assert.equal(shown.length, 2 * PER_SIDE, `${side.uid} shows each message once`);
      assert.equal(contiguityError(shown, 1), "", `${side.uid} in seq order, none missing`);
      const bodies = side.bodies(conv);
      for (const [sender, sent] of [
        [alice.uid, aliceBodies],
        [bob.uid, bobBodies],
      ] as const) {
        const fromSender = shown
          .filter((message) => message.sender === sender)
          .map((message) => new TextDecoder().decode(message.body));
        assert.deepEqual(new Set(fromSender), new Set(sent), `${side.uid} has all of ${sender}'s`);
      }
      assert.equal(new Set(bodies).size, bodies.length, "no body shown twice");
      for (const [id, results] of side.results) {
        assert.equal(results.length, 1, `send ${id} reported ${results.length} times`);
        assert.equal(results[0]!.status.code, Code.OK, `send ${id}: ${results[0]!.status.message}`);
      }
    }
    assert.deepEqual(
      alice.messages(conv).map((m) => m.msgId),
      bob.messages(conv).map((m) => m.msgId),
      "both show the same conversation",
    );
  } finally {
    cutting = false;
    await alice.client.close();
    await bob.client.close();
    for (const proxy of proxies) await proxy.close();
  }
}
