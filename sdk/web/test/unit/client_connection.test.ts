import assert from "node:assert/strict";
import { test } from "node:test";
import { Kick_Reason } from "../../src/gen/im/v1/client_pb.js";
import type { NetworkWatch } from "../../src/network_watch.js";
import { Code, ImError } from "../../src/status.js";
import { login, makeClient, started, unsignedToken } from "../support/client_harness.js";

test("login sends the token and device; the state follows connecting -> connected", async () => {
  const harness = makeClient({ platform: "test", clientVersion: "t/1" });
  await started(harness);
  harness.transport.last.open();
  const req = harness.transport.last.lastOf("loginReq");
  assert.equal(req.body.case === "loginReq" && req.body.value.device, "d1");
  assert.equal(req.body.case === "loginReq" && req.body.value.platform, "test");
  await login(harness);
  assert.deepEqual(
    harness.events.states.map((s) => s.state),
    ["connecting", "connected"],
  );
  await harness.client.close();
});

test("failed attempts move to the next gateway after a growing backoff", async () => {
  const harness = makeClient({ reconnectInitialMs: 1000, random: () => 0.999999 });
  await started(harness);
  const times: number[] = [];
  for (let i = 0; i < 4; ++i) {
    harness.transport.last.closeFromServer(1006, "");
    const count = harness.transport.connections.length;
    const start = harness.clock.now();
    while (harness.transport.connections.length === count) await harness.clock.advance(50);
    times.push(harness.clock.now() - start);
  }
  assert.deepEqual(
    harness.transport.connections.map((c) => c.url),
    ["ws://gw-1", "ws://gw-2", "ws://gw-1", "ws://gw-2", "ws://gw-1"],
  );
  for (let i = 1; i < times.length; ++i) {
    assert.ok(times[i]! > times[i - 1]!, `waits grow: ${times.join(", ")}`);
  }
  await harness.client.close();
});

test("an attempt that does not log in within connectTimeoutMs is abandoned", async () => {
  const harness = makeClient({ connectTimeoutMs: 2000 });
  const gw = await started(harness);
  gw.open(); // the gateway never answers the login
  await harness.clock.advance(2100);
  assert.ok(gw.closedByClient, "closed by the client");
  await harness.client.close();
});

test("GoAway: the client leaves, and reconnects to the next gateway after the hint", async () => {
  const harness = makeClient({ random: () => 0 });
  await started(harness);
  const gw = await login(harness);
  gw.push({ case: "goAway", value: { reconnectAfterMs: 3000 } });
  assert.ok(gw.closedByClient);
  await harness.clock.advance(2900);
  assert.equal(harness.transport.connections.length, 1, "not before the hint");
  await harness.clock.advance(200);
  assert.equal(harness.transport.connections.length, 2);
  assert.equal(harness.transport.last.url, "ws://gw-2");
  await login(harness);
  assert.equal(harness.client.state, "connected");
  await harness.client.close();
});

test("Kick: the client reports it and stays off until setToken", async () => {
  const harness = makeClient();
  await started(harness);
  const gw = await login(harness);
  gw.push({
    case: "kick",
    value: { reason: Kick_Reason.LOGGED_IN_ELSEWHERE, message: "same device" },
  });
  await harness.clock.advance(60_000);
  assert.equal(harness.client.state, "kicked");
  assert.match(harness.events.states.at(-1)!.message, /LOGGED_IN_ELSEWHERE/);
  assert.equal(harness.transport.connections.length, 1, "no reconnect after a kick");
  harness.client.setToken(unsignedToken("alice"));
  await harness.clock.advance(100);
  assert.equal(harness.transport.connections.length, 2, "a new token reconnects");
  await harness.client.close();
});

test("a refused token stops the client (auth_failed) instead of retrying", async () => {
  const harness = makeClient();
  const gw = await started(harness);
  gw.open();
  gw.push(
    { case: "loginResp", value: { status: { code: Code.TOKEN_EXPIRED, message: "expired" } } },
    gw.lastOf("loginReq").id,
  );
  await harness.clock.advance(60_000);
  assert.equal(harness.client.state, "auth_failed");
  assert.equal(harness.events.states.at(-1)?.code, Code.TOKEN_EXPIRED);
  assert.equal(harness.transport.connections.length, 1);
  await harness.client.close();
});

test("heartbeat: a Ping every heartbeatSec; a silent gateway is left", async () => {
  const harness = makeClient({ requestTimeoutMs: 5000 });
  await started(harness);
  const gw = await login(harness, [], 10);
  await harness.clock.advance(10_100);
  assert.equal(gw.framesOf("ping").length, 1);
  gw.push({ case: "pong", value: {} }, gw.lastOf("ping").id);
  await harness.clock.advance(10_000);
  assert.equal(gw.framesOf("ping").length, 2);
  assert.equal(gw.closedByClient, null, "alive: it answered 10 s ago");
  await harness.clock.advance(5_100); // 15.1 s without a frame: more than 10 s + 5 s
  assert.ok(gw.closedByClient);
  await harness.client.close();
});

test("a request made offline is sent after login and resolves with the answer", async () => {
  const harness = makeClient();
  const members = harness.client.listGroupMembers("team");
  await started(harness);
  const gw = await login(harness);
  const req = gw.lastOf("groupMembersReq");
  gw.push(
    {
      case: "groupMembersResp",
      value: {
        members: [
          { uid: "alice", role: 3, joinedSeq: 0n },
          { uid: "bob", role: 1 },
        ],
      },
    },
    req.id,
  );
  assert.deepEqual(
    (await members).map((m) => m.uid),
    ["alice", "bob"],
  );
  await harness.client.close();
});

test("a refusal rejects with its code; no answer rejects with DEADLINE_EXCEEDED", async () => {
  const harness = makeClient({ requestTimeoutMs: 1000 });
  await started(harness);
  const gw = await login(harness);
  const read = harness.client.markRead("g:x", 5);
  await harness.clock.advance(0);
  gw.push(
    { case: "readResp", value: { status: { code: Code.NOT_MEMBER } } },
    gw.lastOf("readReq").id,
  );
  await assert.rejects(read, (e: unknown) => e instanceof ImError && e.code === Code.NOT_MEMBER);
  const join = harness.client.joinGroup("g1");
  const settled = join.catch((e: unknown) => e);
  await harness.clock.advance(1100);
  const error = await settled;
  assert.ok(error instanceof ImError && error.code === Code.DEADLINE_EXCEEDED, String(error));
  await harness.client.close();
});

test("createGroup is not resent on a new connection: it fails with UNAVAILABLE", async () => {
  const harness = makeClient();
  await started(harness);
  const gw = await login(harness);
  const created = harness.client.createGroup("team", ["bob"]);
  const markRead = harness.client.markRead("s:alice:bob", 1);
  await harness.clock.advance(0);
  gw.closeFromServer(1001, "draining");
  await assert.rejects(
    created,
    (e: unknown) => e instanceof ImError && e.code === Code.UNAVAILABLE,
  );
  await harness.clock.advance(1000);
  const next = await login(harness);
  assert.equal(next.framesOf("groupCreateReq").length, 0);
  const resent = next.lastOf("readReq"); // safe to repeat: resent
  next.push({ case: "readResp", value: { readSeq: 1n } }, resent.id);
  assert.equal(await markRead, 1);
  await harness.client.close();
});

test("close() leaves no timer behind", async () => {
  const harness = makeClient();
  await started(harness);
  await login(harness);
  await harness.client.close();
  assert.equal(harness.clock.pendingTimers, 0);
  await assert.rejects(harness.client.listConversations(), ImError);
});

// A network the test switches off and on, as a browser's offline and online events do.
class FakeNetwork implements NetworkWatch {
  online = true;
  private onChange: (online: boolean) => void = () => {};
  watch(onChange: (online: boolean) => void): () => void {
    this.onChange = onChange;
    return () => {
      this.onChange = () => {};
    };
  }
  set(online: boolean): void {
    this.online = online;
    this.onChange(online);
  }
}

test("the network going away drops the connection at once; its return reconnects at once", async () => {
  const network = new FakeNetwork();
  const harness = makeClient({ network, reconnectInitialMs: 5000, reconnectMaxMs: 60_000 });
  await started(harness);
  const first = await login(harness);
  network.set(false);
  assert.ok(first.closedByClient, "dropped without waiting for the heartbeat");
  assert.equal(harness.client.state, "connecting");
  const id = harness.client.sendTo("bob", "written offline");
  await harness.clock.advance(120_000);
  assert.equal(harness.transport.connections.length, 1, "no attempt while the network is away");
  network.set(true);
  await harness.clock.advance(100);
  assert.equal(harness.transport.connections.length, 2, "an attempt at once, not after backoff");
  const second = await login(harness);
  const send = second.lastOf("sendReq");
  assert.equal(send.body.case === "sendReq" && send.body.value.clientMsgId, id);
  await harness.client.close();
  network.set(false); // after close: nothing listens any more
  assert.equal(harness.transport.connections.length, 2);
});
