// The support-desk demo's web server for a LOCAL DEVELOPMENT run (deploy/local/cluster up starts
// it; nothing else should). It serves the demo's pages (sdk/web/demo/dist at /), the web SDK
// (sdk/web/dist at /sdk/) and @bufbuild/protobuf (at /vendor/@bufbuild/protobuf/), and plays the
// app's backend: POST /dev/token {uid, device?} -> {token, wsUrl, wsUrls, expiresAtMs} signs a
// login token for ANY uid with the secret it is given. That is why it refuses to start without
// IM_DEV_WEB=1, and listens on loopback only unless IM_DEV_WEB_ALLOW_REMOTE=1.
//
// Environment (defaults in brackets):
//   IM_DEV_WEB=1               required: this is a local development run
//   IM_DEV_WEB_LISTEN          host:port [127.0.0.1:8080]; port 0 takes a free one
//   IM_DEV_WEB_TOKEN_SECRET    required: logic.token_secret of the node the pages connect to
//   IM_DEV_WEB_WS_URLS         required: the gateways' WebSocket URLs, comma separated
//   IM_DEV_WEB_TOKEN_TTL_SEC   how long a token lasts [3600]
//   IM_DEV_WEB_ALLOW_REMOTE=1  allow a listen address other than loopback (whoever reaches it
//                              can log in as anyone)
// Prints "im-dev-web ready port=N url=..." once it listens; SIGTERM or SIGINT stops it.
import { existsSync } from "node:fs";
import { createServer } from "node:http";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseTokenRequest, signToken } from "./dev_token.mjs";
import { serveStatic } from "./static_files.mjs";

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const SDK = join(REPO, "sdk/web");
const MOUNTS = [
  ["/vendor/@bufbuild/protobuf/", join(SDK, "node_modules/@bufbuild/protobuf/dist/esm")],
  ["/sdk/", join(SDK, "dist")],
  ["/", join(SDK, "demo/dist")],
];
const BUILD_HINT = "build it: cd sdk/web && npm ci && npm run build && npm --prefix demo run build";
const MAX_BODY_BYTES = 4096;
const LOOPBACK_HOSTS = /^(127\.\d+\.\d+\.\d+|localhost|\[::1\]|::1)$/;

function fatal(reason) {
  console.error(`im-dev-web: ${reason}`);
  process.exit(2);
}

function settings(env) {
  if (env.IM_DEV_WEB !== "1") {
    fatal("refusing to start: set IM_DEV_WEB=1 to say this is a local development run");
  }
  const listen = env.IM_DEV_WEB_LISTEN || "127.0.0.1:8080";
  const colon = listen.lastIndexOf(":");
  const host = listen.slice(0, colon);
  const port = Number(listen.slice(colon + 1));
  if (colon <= 0 || !Number.isInteger(port) || port < 0 || port > 65535) {
    fatal(`IM_DEV_WEB_LISTEN=${listen}: expected host:port`);
  }
  const loopback = LOOPBACK_HOSTS.test(host);
  if (!loopback && env.IM_DEV_WEB_ALLOW_REMOTE !== "1") {
    fatal(`refusing to listen on ${host}: not loopback (IM_DEV_WEB_ALLOW_REMOTE=1 allows it)`);
  }
  const secret = env.IM_DEV_WEB_TOKEN_SECRET ?? "";
  if (!secret) fatal("IM_DEV_WEB_TOKEN_SECRET is not set (logic.token_secret of the node)");
  const wsUrls = (env.IM_DEV_WEB_WS_URLS ?? "").split(",").filter(Boolean);
  if (wsUrls.length === 0) fatal("IM_DEV_WEB_WS_URLS is not set (ws://host:port/,...)");
  const ttlSec = Number(env.IM_DEV_WEB_TOKEN_TTL_SEC ?? 3600);
  if (!Number.isInteger(ttlSec) || ttlSec <= 0) fatal("IM_DEV_WEB_TOKEN_TTL_SEC: whole seconds");
  for (const [prefix, directory] of MOUNTS) {
    if (!existsSync(directory))
      fatal(`nothing to serve at ${prefix}: ${directory} is missing; ${BUILD_HINT}`);
  }
  return { host: host.replace(/^\[|\]$/g, ""), port, loopback, secret, wsUrls, ttlSec };
}

function send(response, status, body, type = "text/plain; charset=utf-8") {
  response.writeHead(status, { "Content-Type": type, "Cache-Control": "no-store" });
  response.end(body);
}

function readBody(request) {
  return new Promise((resolve, reject) => {
    let text = "";
    request.setEncoding("utf8");
    request.on("data", (chunk) => {
      text += chunk;
      if (text.length > MAX_BODY_BYTES) reject(new Error("body too large"));
    });
    request.on("end", () => resolve(text));
    request.on("error", reject);
  });
}

// A JSON content type makes a cross-site page's request need a CORS preflight, which is never
// granted: only pages served here can mint tokens.
async function issueToken(config, request, response) {
  if (!(request.headers["content-type"] ?? "").startsWith("application/json")) {
    return send(response, 415, "POST /dev/token takes application/json\n");
  }
  const parsed = parseTokenRequest(await readBody(request));
  if (parsed.error) return send(response, 400, `${parsed.error}\n`);
  const nowMs = Date.now();
  const token = signToken({ ...parsed, secret: config.secret, ttlSec: config.ttlSec, nowMs });
  console.log(
    `token issued uid=${parsed.uid} device=${parsed.device || "-"} ttl=${config.ttlSec}s`,
  );
  const body = {
    token,
    wsUrl: config.wsUrls[0],
    wsUrls: config.wsUrls,
    expiresAtMs: nowMs + config.ttlSec * 1000,
  };
  send(response, 200, JSON.stringify(body), "application/json");
}

async function handle(config, request, response) {
  // On loopback, a Host of another name is a DNS-rebinding page reaching in: refused.
  const hostname = (request.headers.host ?? "").replace(/:\d+$/, "");
  if (config.loopback && !LOOPBACK_HOSTS.test(hostname)) {
    return send(response, 421, "this dev server answers loopback host names only\n");
  }
  const { pathname } = new URL(request.url ?? "/", "http://dev-web");
  if (pathname === "/dev/token") {
    if (request.method !== "POST") return send(response, 405, "POST only\n");
    return issueToken(config, request, response);
  }
  if (request.method !== "GET" && request.method !== "HEAD")
    return send(response, 405, "GET only\n");
  if (!(await serveStatic(MOUNTS, pathname, response))) send(response, 404, "not found\n");
}

const config = settings(process.env);
const server = createServer((request, response) => {
  handle(config, request, response).catch((error) => {
    console.error(`${request.method} ${request.url}: ${error.message}`);
    if (!response.headersSent) send(response, 400, `${error.message}\n`);
    else response.destroy();
  });
});
server.on("error", (error) =>
  fatal(`cannot listen on ${config.host}:${config.port}: ${error.message}`),
);
server.listen(config.port, config.host, () => {
  const { port } = server.address();
  const url = `http://${config.host.includes(":") ? `[${config.host}]` : config.host}:${port}/`;
  console.log(
    "im-dev-web: DEVELOPMENT ONLY: POST /dev/token signs a login token for any uid with the " +
      "local secret; run it through deploy/local/cluster up, never where others can reach it",
  );
  if (!config.loopback)
    console.log(`im-dev-web: WARNING: listening on ${config.host}, not loopback`);
  console.log(`im-dev-web: pages connect to ${config.wsUrls.join(" ")}`);
  console.log(
    `im-dev-web ready port=${port} url=${url} user=${url}user.html staff=${url}staff.html`,
  );
});
for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => {
    console.log(`im-dev-web: ${signal}: stopping`);
    server.close(() => process.exit(0));
    server.closeAllConnections();
  });
}
