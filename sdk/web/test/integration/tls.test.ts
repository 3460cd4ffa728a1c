import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { Code } from "../../src/status.js";
import { ImServer } from "../support/im_server.js";
import { LiveClient, singleChat, uniqueUid } from "../support/live_client.js";
import { REPO } from "../support/server_process.js";

// Two development CAs (deploy/local/dev-tls.sh): the server's certificate is signed by the first.
let material: string;
let server: ImServer;
let wssUrl: string;

function caOf(name: string): string {
  return readFileSync(join(material, name, "ca.pem"), "utf8");
}

before(async () => {
  material = mkdtempSync(join(tmpdir(), "im-web-sdk-tls-"));
  for (const name of ["ours", "other"]) {
    execFileSync(join(REPO, "deploy/local/dev-tls.sh"), [join(material, name)], {
      stdio: "ignore",
    });
  }
  server = await ImServer.start({
    env: {
      IM_GATEWAY_WSS_LISTEN: "127.0.0.1:0",
      IM_GATEWAY_TLS_CERT_FILE: join(material, "ours", "server.pem"),
      IM_GATEWAY_TLS_KEY_FILE: join(material, "ours", "server.key"),
    },
  });
  assert.ok(server.wssPort > 0, "im-server serves wss");
  wssUrl = `wss://127.0.0.1:${server.wssPort}/`;
});
after(async () => {
  await server?.stop();
  if (material) rmSync(material, { recursive: true, force: true });
});

// Clients trusting the server's CA chat over wss, in order and once.
test("clients that trust the gateway's CA chat over wss", { timeout: 120_000 }, async () => {
  const alice = new LiveClient(uniqueUid("alice"), [wssUrl], { tlsCa: caOf("ours") });
  const bob = new LiveClient(uniqueUid("bob"), [wssUrl], { tlsCa: caOf("ours") });
  try {
    await alice.startAndWaitConnected();
    await bob.startAndWaitConnected();
    const ids = ["one", "two", "three"].map((text) => alice.client.sendTo(bob.uid, text));
    const conv = singleChat(alice.uid, bob.uid);
    assert.ok(
      await bob.waitFor(() => bob.messages(conv).length >= 3, 15_000),
      JSON.stringify(bob.bodies(conv)),
    );
    assert.deepEqual(bob.bodies(conv), ["one", "two", "three"]);
    for (const id of ids) assert.equal(alice.results.get(id)?.[0]?.status.code, Code.OK);
  } finally {
    await alice.client.close();
    await bob.client.close();
  }
});

// A client trusting another CA refuses the gateway's certificate: it never logs in, and its log
// says why at every attempt (the state stays "connecting", which reports no repeat).
test("a client that trusts another CA never connects", { timeout: 60_000 }, async () => {
  const failures: string[] = [];
  const mallory = new LiveClient(uniqueUid("carol"), [wssUrl], {
    tlsCa: caOf("other"),
    reconnectInitialMs: 100,
    reconnectMaxMs: 500,
    log: (_level, line) => {
      if (line.startsWith("connection attempt failed")) failures.push(line);
    },
  });
  try {
    mallory.client.start();
    assert.ok(
      await mallory.waitFor(() => failures.length >= 3, 15_000),
      JSON.stringify(mallory.states),
    );
    for (const line of failures) assert.match(line, /certificate/i);
    assert.equal(mallory.connects, 0);
    assert.equal(mallory.state, "connecting");
  } finally {
    await mallory.client.close();
  }
});

// Without the WebSocket class that applies it, a CA is refused rather than silently ignored.
test("tlsCa without a WebSocket class that takes it is refused", () => {
  const global = globalThis as { WebSocket?: unknown };
  const saved = global.WebSocket;
  global.WebSocket = class {};
  try {
    assert.throws(
      () => new LiveClient(uniqueUid("dave"), [wssUrl], { tlsCa: "x", webSocket: undefined }),
      /tlsCa needs a WebSocket class/,
    );
  } finally {
    global.WebSocket = saved;
  }
});
