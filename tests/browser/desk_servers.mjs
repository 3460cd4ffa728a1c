// What the pages need, on free ports: the embedded node (im-server, a fresh data directory) and
// the dev web server (deploy/local/dev-web) that serves the demo and signs tokens for it.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { ChildProcess } from "./processes.mjs";

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const SERVER_CONFIG = join(REPO, "deploy/local/server.yaml");
const DEV_WEB = join(REPO, "deploy/local/dev-web/server.mjs");
const TOKEN_SECRET = "dev-secret-change-me"; // deploy/local/server.yaml, logic.token_secret
const SERVER_READY_MS = 90_000; // an ASan build starts slowly on a busy machine
const WEB_READY_MS = 10_000;

export class DeskServers {
  #dataDir = mkdtempSync(join(tmpdir(), "im-browser-test-"));
  server = null;
  web = null;
  webUrl = "";

  async start() {
    const binary = process.env.IM_SERVER_BINARY ?? join(REPO, "build/test/server/im-server");
    this.server = new ChildProcess(
      "im-server",
      binary,
      ["--config", SERVER_CONFIG, "--data", this.#dataDir],
      {
        IM_GATEWAY_LISTEN: "127.0.0.1:0",
        IM_GATEWAY_WS_LISTEN: "127.0.0.1:0",
        IM_GATEWAY_METRICS_LISTEN: "127.0.0.1:0",
        IM_GATEWAY_WORKERS: "2",
        IM_GATEWAY_DRAIN_TIMEOUT_MS: "1000",
        IM_LOGIC_TOKEN_SECRET: TOKEN_SECRET,
      },
    );
    const [, wsPort] = await this.server.ready(
      /^im-server ready .*\bws_port=(\d+)/m,
      SERVER_READY_MS,
    );
    this.web = new ChildProcess("dev-web", process.execPath, [DEV_WEB], {
      IM_DEV_WEB: "1",
      IM_DEV_WEB_LISTEN: "127.0.0.1:0",
      IM_DEV_WEB_TOKEN_SECRET: TOKEN_SECRET,
      IM_DEV_WEB_WS_URLS: `ws://127.0.0.1:${wsPort}/`,
    });
    const [, url] = await this.web.ready(/^im-dev-web ready port=\d+ url=(\S+)/m, WEB_READY_MS);
    this.webUrl = url;
  }

  // Stops both (the web server first) and removes the data directory.
  async stop() {
    await this.web?.stop();
    await this.server?.stop();
    rmSync(this.#dataDir, { recursive: true, force: true });
  }
}
