// Child processes of the test: started with their ready line awaited, stopped with SIGTERM then
// SIGKILL, and killed on any way out of the test process (setpriv's parent-death signal covers
// even a SIGKILL of the test; the exit hook and the signal handlers cover the rest).
import { spawn } from "node:child_process";

const STOP_GRACE_MS = 5000;
const LOG_LIMIT_BYTES = 64 * 1024;
const running = new Set();

process.on("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.once(signal, () => process.exit(130)); // runs the exit hook
}

export class ChildProcess {
  #child;
  #log = "";
  #exited;
  #exitCode;

  constructor(name, command, args, env) {
    this.name = name;
    // Without IM_SERVER_BINARY: im-server reads IM_SERVER_* as settings and refuses unknown ones.
    const inherited = { ...process.env };
    delete inherited.IM_SERVER_BINARY;
    this.#child = spawn("setpriv", ["--pdeathsig", "KILL", "--", command, ...args], {
      env: { ...inherited, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    running.add(this.#child);
    const keep = (chunk) => {
      this.#log = (this.#log + chunk.toString()).slice(-LOG_LIMIT_BYTES);
    };
    this.#child.stdout.on("data", keep);
    this.#child.stderr.on("data", keep);
    this.#exited = new Promise((resolve) =>
      this.#child.once("exit", (code, signal) => {
        running.delete(this.#child);
        this.#exitCode = code ?? signal;
        resolve();
      }),
    );
  }

  get log() {
    return this.#log;
  }

  // Resolves with the match of `pattern` in the output; rejects, with the log, when the process
  // exits first or `timeoutMs` passes.
  async ready(pattern, timeoutMs) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const match = pattern.exec(this.#log);
      if (match) return match;
      if (this.#exitCode !== undefined) {
        throw new Error(`${this.name} exited (${this.#exitCode}) before ready:\n${this.#log}`);
      }
      if (Date.now() > deadline) {
        throw new Error(`${this.name} not ready within ${timeoutMs} ms:\n${this.#log}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  async stop() {
    if (this.#exitCode !== undefined) return;
    this.#child.kill("SIGTERM");
    const grace = new Promise((resolve) => setTimeout(resolve, STOP_GRACE_MS).unref());
    await Promise.race([this.#exited, grace]);
    if (this.#exitCode === undefined) {
      this.#child.kill("SIGKILL");
      await this.#exited;
    }
  }
}
