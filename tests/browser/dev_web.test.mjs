// The dev web server (deploy/local/dev-web) on its own: the guards that keep a development
// token minter development-only, the tokens it signs, and what it serves.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHmac } from "node:crypto";
import { request } from "node:http";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { REPO } from "./desk_servers.mjs";
import { ChildProcess } from "./processes.mjs";

const SERVER = join(REPO, "deploy/local/dev-web/server.mjs");
const SECRET = "test-secret";
const ENV = {
  IM_DEV_WEB: "1",
  IM_DEV_WEB_LISTEN: "127.0.0.1:0",
  IM_DEV_WEB_TOKEN_SECRET: SECRET,
  IM_DEV_WEB_WS_URLS: "ws://127.0.0.1:1/,ws://127.0.0.1:2/",
  IM_DEV_WEB_TOKEN_TTL_SEC: "600",
};

function startRefused(env) {
  const run = spawnSync(process.execPath, [SERVER], {
    env: { ...process.env, ...env },
    encoding: "utf8",
    timeout: 10_000,
  });
  return { status: run.status, stderr: run.stderr };
}

// One HTTP request to the server: {status, body}.
function fetchRaw(port, { method = "GET", path = "/", headers = {}, body = "" } = {}) {
  return new Promise((resolve, reject) => {
    const outgoing = request({ host: "127.0.0.1", port, method, path, headers }, (response) => {
      let text = "";
      response.setEncoding("utf8");
      response.on("data", (chunk) => (text += chunk));
      response.on("end", () => resolve({ status: response.statusCode, body: text }));
    });
    outgoing.on("error", reject);
    outgoing.end(body);
  });
}

describe("dev web server", () => {
  it("refuses to start unless told it is a local development run", () => {
    const { IM_DEV_WEB: _, ...withoutFlag } = ENV;
    const run = startRefused({ ...withoutFlag, IM_DEV_WEB: "" });
    assert.equal(run.status, 2);
    assert.match(run.stderr, /IM_DEV_WEB=1/);
  });

  it("refuses a listen address other than loopback", () => {
    const run = startRefused({ ...ENV, IM_DEV_WEB_LISTEN: "0.0.0.0:0" });
    assert.equal(run.status, 2);
    assert.match(run.stderr, /not loopback/);
  });

  describe("running", () => {
    const web = new ChildProcess("dev-web", process.execPath, [SERVER], ENV);
    let port = 0;
    before(async () => {
      const [, ready] = await web.ready(/^im-dev-web ready port=(\d+)/m, 10_000);
      port = Number(ready);
    });
    after(() => web.stop());

    it("says it is for development only", () => {
      assert.match(web.log, /DEVELOPMENT ONLY/);
    });

    it("signs tokens for the uid and device with the secret", async () => {
      const nowSec = Math.floor(Date.now() / 1000);
      const response = await fetchRaw(port, {
        method: "POST",
        path: "/dev/token",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ uid: "alice", device: "web-1" }),
      });
      assert.equal(response.status, 200);
      const { token, wsUrl, wsUrls } = JSON.parse(response.body);
      assert.deepEqual(wsUrls, ["ws://127.0.0.1:1/", "ws://127.0.0.1:2/"]);
      assert.equal(wsUrl, wsUrls[0]);
      const [payload, mac] = token.split(".");
      assert.equal(mac, createHmac("sha256", SECRET).update(payload).digest("base64url"));
      const claims = JSON.parse(Buffer.from(payload, "base64url").toString());
      assert.equal(claims.uid, "alice");
      assert.equal(claims.dev, "web-1");
      assert.ok(claims.exp >= nowSec + 600 && claims.exp <= nowSec + 602, `exp ${claims.exp}`);
    });

    it("refuses token requests that are not JSON, bad uids and foreign host names", async () => {
      const post = (headers, body) =>
        fetchRaw(port, { method: "POST", path: "/dev/token", headers, body });
      const json = { "Content-Type": "application/json" };
      assert.equal((await post({ "Content-Type": "text/plain" }, '{"uid":"a"}')).status, 415);
      assert.equal((await post(json, '{"uid":"a b"}')).status, 400);
      assert.equal((await post(json, "not json")).status, 400);
      const rebound = { ...json, Host: `attacker.example:${port}` };
      assert.equal((await post(rebound, '{"uid":"a"}')).status, 421);
      assert.equal((await fetchRaw(port, { path: "/dev/token" })).status, 405);
    });

    it("serves the demo, the SDK and protobuf, and nothing above them", async () => {
      for (const path of ["/", "/user.html", "/staff.html", "/sdk/index.js"]) {
        assert.equal((await fetchRaw(port, { path })).status, 200, path);
      }
      const protobuf = "/vendor/@bufbuild/protobuf/codegenv2/index.js";
      assert.equal((await fetchRaw(port, { path: protobuf })).status, 200);
      for (const path of [
        "/..%2fpackage.json",
        "/sdk/..%2fpackage.json",
        "/sdk/%2e%2e/package.json",
      ]) {
        assert.equal((await fetchRaw(port, { path })).status, 404, path);
      }
    });
  });
});
