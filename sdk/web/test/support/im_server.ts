import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { accepts, freePort } from "./free_port.js";
import { DEV_SECRET } from "./token_signer.js";

// sdk/web/dist-test/test/support -> the repository root.
const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../../../../..");
const DEFAULT_BINARY = join(REPO, "build/test/server/im-server");
const CONFIG = join(REPO, "deploy/local/server.yaml");
const READY_TIMEOUT_MS = 90_000; // an ASan build on a busy machine starts slowly
const STOP_GRACE_MS = 15_000;
const LOG_TAIL_BYTES = 16_384;

const running = new Set<ChildProcess>();
// A test runner that dies mid-test still takes its servers with it.
process.on("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

export interface ImServerOptions {
  env?: Record<string, string>;
  drainTimeoutMs?: number;
}

// One embedded node (im-server: gateway and logic in one process on SQLite) on free ports and a
// fresh data directory, for a test. $IM_SERVER_BINARY overrides the binary.
export class ImServer {
  private log = "";
  private exited: Promise<number | null>;
  private exitCode: number | null | undefined = undefined;

  private constructor(
    private readonly child: ChildProcess,
    readonly clientPort: number,
    readonly wsPort: number,
    readonly metricsPort: number,
    private readonly dataDir: string,
  ) {
    running.add(child);
    const keep = (chunk: Buffer) => {
      this.log = (this.log + chunk.toString()).slice(-LOG_TAIL_BYTES);
    };
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
    this.exited = new Promise((resolve) =>
      child.once("exit", (code, signal) => {
        running.delete(child);
        this.exitCode = code ?? (signal ? -1 : null);
        resolve(code);
      }),
    );
  }

  get url(): string {
    return `ws://127.0.0.1:${this.wsPort}/`;
  }

  get logTail(): string {
    return this.log;
  }

  static async start(options: ImServerOptions = {}): Promise<ImServer> {
    const binary = process.env.IM_SERVER_BINARY ?? DEFAULT_BINARY;
    if (!existsSync(binary)) {
      throw new Error(`no im-server at ${binary}: build it (ninja -C build/test im-server)`);
    }
    const [clientPort, wsPort, metricsPort] = [
      await freePort(),
      await freePort(),
      await freePort(),
    ];
    const dataDir = mkdtempSync(join(tmpdir(), "im-web-sdk-"));
    // Without IM_SERVER_BINARY: im-server reads IM_SERVER_* as settings and refuses unknown ones.
    const inherited = { ...process.env };
    delete inherited.IM_SERVER_BINARY;
    const env = {
      ...inherited,
      IM_GATEWAY_LISTEN: `127.0.0.1:${clientPort}`,
      IM_GATEWAY_WS_LISTEN: `127.0.0.1:${wsPort}`,
      IM_GATEWAY_METRICS_LISTEN: `127.0.0.1:${metricsPort}`,
      IM_GATEWAY_WORKERS: "2",
      IM_GATEWAY_DRAIN_TIMEOUT_MS: String(options.drainTimeoutMs ?? 3000),
      IM_LOGIC_TOKEN_SECRET: DEV_SECRET,
      IM_LOGIC_SEND_RATE_PER_USER: "0",
      IM_LOGIC_GROUP_SEND_RATE_PER_USER: "0",
      IM_LOG_LEVEL: "info",
      ...options.env,
    };
    // setpriv ties the server to this process: SIGKILL when it dies, even by SIGKILL (the exit
    // hook above covers the rest), so a killed test run leaves no server behind.
    const child = spawn(
      "setpriv",
      ["--pdeathsig", "KILL", "--", binary, "--config", CONFIG, "--data", dataDir],
      {
        env,
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    const server = new ImServer(child, clientPort, wsPort, metricsPort, dataDir);
    try {
      await server.waitUntilServing();
    } catch (error) {
      await server.stop();
      throw error;
    }
    return server;
  }

  // Ready when the WebSocket port accepts; fails at once if the process exits first.
  private async waitUntilServing(): Promise<void> {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (this.exitCode !== undefined) {
        throw new Error(`im-server exited (${this.exitCode}) before serving:\n${this.log}`);
      }
      if (/im-server ready/.test(this.log) && (await accepts(this.wsPort))) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const hint = /ws_port=/.test(this.log)
      ? ""
      : " (its ready line names no ws_port: does this im-server have the WebSocket listener?)";
    throw new Error(
      `im-server did not accept WebSocket connections on ${this.wsPort} within ` +
        `${READY_TIMEOUT_MS} ms${hint}:\n${this.log}`,
    );
  }

  // SIGTERM: the gateway drains (GoAway to its clients) and the process exits.
  drain(): void {
    if (this.exitCode === undefined) this.child.kill("SIGTERM");
  }

  // Drains and waits; SIGKILL when it takes too long. Removes the data directory.
  async stop(): Promise<void> {
    if (this.exitCode === undefined) {
      this.child.kill("SIGTERM");
      const timer = new Promise((resolve) => setTimeout(resolve, STOP_GRACE_MS));
      await Promise.race([this.exited, timer]);
      if (this.exitCode === undefined) {
        this.child.kill("SIGKILL");
        await this.exited;
      }
    }
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}
