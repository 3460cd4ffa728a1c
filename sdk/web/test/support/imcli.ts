import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { signToken } from "./token_signer.js";
import { within } from "./within.js";

// sdk/web/dist-test/test/support -> the repository root.
const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../../../../..");
const DEFAULT_BINARY = join(REPO, "build/test/sdk/imcli");

// A received message as imcli prints it: "[<conv>] #<seq> <sender>: <body>".
export interface PrintedMessage {
  convId: string;
  seq: number;
  sender: string;
  body: string;
}
const MESSAGE_LINE = /^\[([^\]]+)\] #(\d+) (\S+): (.*)$/;

// imcli, the terminal client on the C++ SDK, driven through its stdin and read from its stdout:
// a C++ client in the same conversations as the web SDK's. $IM_IMCLI_BINARY overrides the
// binary. Tied to this process by setpriv (SIGKILL when it dies).
export class Imcli {
  readonly lines: string[] = [];
  readonly messages: PrintedMessage[] = [];
  private readonly exited: Promise<number | null>;
  private running = true;

  private constructor(private readonly child: ChildProcess) {
    createInterface({ input: child.stdout! }).on("line", (line) => {
      this.lines.push(line);
      const m = MESSAGE_LINE.exec(line);
      if (m) this.messages.push({ convId: m[1]!, seq: Number(m[2]), sender: m[3]!, body: m[4]! });
    });
    this.exited = new Promise((resolve) =>
      child.once("exit", (code) => {
        this.running = false;
        resolve(code);
      }),
    );
    child.stdin!.on("error", () => {}); // it quit: what was still being typed is moot
  }

  static start(uid: string, gateway: string): Imcli {
    const binary = process.env.IM_IMCLI_BINARY ?? DEFAULT_BINARY;
    if (!existsSync(binary)) throw new Error(`no imcli at ${binary}: build it (ninja imcli)`);
    const args = ["--gateway", gateway, "--token", signToken(uid), "--device", "desktop"];
    const child = spawn("setpriv", ["--pdeathsig", "KILL", "--", binary, ...args], {
      stdio: ["pipe", "pipe", "inherit"],
    });
    return new Imcli(child);
  }

  type(line: string): void {
    if (this.running) this.child.stdin!.write(line + "\n");
  }

  // Polls until a printed line matches `pattern` or `timeoutMs` passes.
  async waitForLine(pattern: RegExp, timeoutMs: number): Promise<boolean> {
    return this.waitFor(() => this.lines.some((line) => pattern.test(line)), timeoutMs);
  }

  async waitFor(condition: () => boolean, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!condition()) {
      if (Date.now() > deadline) return false;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return true;
  }

  // /quit, then its exit code (SIGKILL after `timeoutMs`).
  async quit(timeoutMs = 15_000): Promise<number | null> {
    if (!this.running) return this.exited;
    this.type("/quit");
    const code = await within(this.exited, timeoutMs);
    if (code !== "late") return code;
    this.child.kill("SIGKILL");
    await this.exited;
    return null;
  }
}
