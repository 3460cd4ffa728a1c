import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { within } from "./within.js";

// sdk/web/dist-test/test/support -> the repository root.
export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../../../../..");
const READY_TIMEOUT_MS = 90_000; // an ASan build on a busy machine starts slowly
const STOP_GRACE_MS = 15_000;
const LOG_TAIL_BYTES = 16_384;

const running = new Set<ChildProcess>();
// A test runner that ends mid-test still takes its servers with it.
process.on("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

// One of our server binaries (im-server, im-logic, im-gateway) started for a test: ready once it
// prints its "<name> ready key=value ..." line on stdout. Tied to this process by setpriv: SIGKILL
// when it dies, even by SIGKILL. Keeps the tail of its output for failure messages.
export class ServerProcess {
  private log = "";
  private readyLine = "";
  private exitCode: number | null | undefined = undefined;
  private readonly exited: Promise<void>;

  private constructor(
    readonly name: string,
    private readonly child: ChildProcess,
  ) {
    running.add(child);
    const keep = (chunk: Buffer) => {
      this.log = (this.log + chunk.toString()).slice(-LOG_TAIL_BYTES);
    };
    child.stderr!.on("data", keep);
    createInterface({ input: child.stdout! }).on("line", (line) => {
      keep(Buffer.from(line + "\n"));
      if (!this.readyLine && line.startsWith(`${name} ready `)) this.readyLine = line;
    });
    this.exited = new Promise((resolve) =>
      child.once("exit", (code, signal) => {
        running.delete(child);
        this.exitCode = code ?? (signal ? -1 : null);
        resolve();
      }),
    );
  }

  // Starts `binary` with `args` and `env` (added to this process's environment, less the tests'
  // IM_<PART>_BINARY: the servers read IM_<SECTION>_* as settings and refuse unknown ones), and
  // waits for its ready line; fails with its output when it exits or takes too long.
  static async start(
    name: string,
    binary: string,
    args: string[],
    env: Record<string, string>,
  ): Promise<ServerProcess> {
    if (!existsSync(binary))
      throw new Error(`no ${name} at ${binary}: build it (ninja -C build/test)`);
    const inherited = Object.fromEntries(
      Object.entries(process.env).filter(([name]) => !/^IM_[A-Z]+_BINARY$/.test(name)),
    );
    const child = spawn("setpriv", ["--pdeathsig", "KILL", "--", binary, ...args], {
      env: { ...inherited, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const server = new ServerProcess(name, child);
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (!server.readyLine) {
      if (server.exitCode !== undefined || Date.now() > deadline) {
        await server.stop();
        throw new Error(`${name} did not start (exit ${server.exitCode}):\n${server.log}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return server;
  }

  // A number of the ready line ("ws_port=41234" -> 41234); 0 when it has none.
  field(key: string): number {
    const match = new RegExp(`\\b${key}=(\\d+)`).exec(this.readyLine);
    return match ? Number(match[1]) : 0;
  }

  get logTail(): string {
    return this.log;
  }

  get running(): boolean {
    return this.exitCode === undefined;
  }

  // SIGTERM: it drains (a gateway sends GoAway to its clients) and exits.
  drain(): void {
    if (this.running) this.child.kill("SIGTERM");
  }

  // Drains and waits; SIGKILL when it takes too long.
  async stop(): Promise<void> {
    if (!this.running) return;
    this.child.kill("SIGTERM");
    await within(this.exited, STOP_GRACE_MS);
    if (this.running) {
      this.child.kill("SIGKILL");
      await this.exited;
    }
  }
}
