import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { accepts } from "./free_port.js";
import { REPO, ServerProcess } from "./server_process.js";
import { DEV_SECRET } from "./token_signer.js";

const DEFAULT_BINARY = join(REPO, "build/test/server/im-server");
const CONFIG = join(REPO, "deploy/local/server.yaml");

export interface ImServerOptions {
  env?: Record<string, string>;
  drainTimeoutMs?: number;
}

// One embedded node (im-server: gateway and logic in one process on SQLite) on ports of its own
// and a fresh data directory, for a test. $IM_SERVER_BINARY overrides the binary.
export class ImServer {
  private constructor(
    private readonly process: ServerProcess,
    private readonly dataDir: string,
  ) {}

  static async start(options: ImServerOptions = {}): Promise<ImServer> {
    const binary = process.env.IM_SERVER_BINARY ?? DEFAULT_BINARY;
    const dataDir = mkdtempSync(join(tmpdir(), "im-web-sdk-"));
    const env = {
      IM_GATEWAY_LISTEN: "127.0.0.1:0",
      IM_GATEWAY_WS_LISTEN: "127.0.0.1:0",
      IM_GATEWAY_METRICS_LISTEN: "127.0.0.1:0",
      IM_GATEWAY_WORKERS: "2",
      IM_GATEWAY_DRAIN_TIMEOUT_MS: String(options.drainTimeoutMs ?? 3000),
      IM_LOGIC_TOKEN_SECRET: DEV_SECRET,
      IM_LOGIC_SEND_RATE_PER_USER: "0",
      IM_LOGIC_GROUP_SEND_RATE_PER_USER: "0",
      IM_LOG_LEVEL: "info",
      ...options.env,
    };
    let server: ServerProcess;
    try {
      server = await ServerProcess.start(
        "im-server",
        binary,
        ["--config", CONFIG, "--data", dataDir],
        env,
      );
    } catch (error) {
      rmSync(dataDir, { recursive: true, force: true });
      throw error;
    }
    const started = new ImServer(server, dataDir);
    if (!started.wsPort || !(await accepts(started.wsPort))) {
      await started.stop();
      throw new Error(`im-server serves no WebSocket port:\n${server.logTail}`);
    }
    return started;
  }

  get clientPort(): number {
    return this.process.field("client_port");
  }
  get wsPort(): number {
    return this.process.field("ws_port");
  }
  get url(): string {
    return `ws://127.0.0.1:${this.wsPort}/`;
  }
  // The WebSocket port over TLS: 0 unless IM_GATEWAY_WSS_LISTEN and the certificate were given.
  get wssPort(): number {
    return this.process.field("wss_port");
  }
  get logTail(): string {
    return this.process.logTail;
  }

  // SIGTERM: the gateway drains (GoAway to its clients) and the process exits.
  drain(): void {
    this.process.drain();
  }

  // Drains and waits (SIGKILL when it takes too long); removes the data directory.
  async stop(): Promise<void> {
    await this.process.stop();
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}
