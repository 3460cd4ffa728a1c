import WebSocket from "ws";
import { ImClient } from "../../src/client.js";
import type { ClientOptions } from "../../src/options.js";
import type { StateStore } from "../../src/state_store.js";
import type { ConnectionState, Message, ReadReceipt, SendResult } from "../../src/types.js";
import { signToken } from "./token_signer.js";

const decoder = new TextDecoder();

// A real client (the ws package's WebSocket) and everything it reported, with waits on it.
export class LiveClient {
  readonly client: ImClient;
  readonly states: { state: ConnectionState; code: number; message: string }[] = [];
  readonly delivered = new Map<string, Message[]>();
  readonly results = new Map<string, SendResult[]>();
  readonly receipts: ReadReceipt[] = [];
  connects = 0;

  constructor(
    readonly uid: string,
    urls: string[],
    options: Partial<ClientOptions> & { device?: string; store?: StateStore } = {},
  ) {
    this.client = new ImClient({
      urls,
      token: signToken(uid, undefined, undefined),
      device: options.device ?? "phone",
      webSocket: WebSocket as unknown as ClientOptions["webSocket"],
      startAtRandomGateway: false,
      log: process.env.IM_SDK_LOG
        ? (level, line) => console.log(`[${uid} ${level}] ${line}`)
        : undefined,
      ...options,
      listener: {
        onStateChanged: (state, reason) => {
          if (state === "connected") ++this.connects;
          this.states.push({ state, ...reason });
        },
        onMessages: (convId, messages) => {
          const list = this.delivered.get(convId) ?? [];
          list.push(...messages);
          this.delivered.set(convId, list);
        },
        onSendResult: (result) => {
          const list = this.results.get(result.clientMsgId) ?? [];
          list.push(result);
          this.results.set(result.clientMsgId, list);
        },
        onReadReceipt: (receipt) => this.receipts.push(receipt),
      },
    });
  }

  messages(convId: string): Message[] {
    return this.delivered.get(convId) ?? [];
  }

  bodies(convId: string): string[] {
    return this.messages(convId).map((m) => decoder.decode(m.body));
  }

  get state(): ConnectionState {
    return this.client.state;
  }

  // Polls `condition` until it holds or `timeoutMs` passes; says which.
  async waitFor(condition: () => boolean, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!condition()) {
      if (Date.now() > deadline) return false;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return true;
  }

  async startAndWaitConnected(timeoutMs = 20_000): Promise<void> {
    this.client.start();
    if (!(await this.waitFor(() => this.state === "connected", timeoutMs))) {
      throw new Error(`${this.uid} did not connect: ${JSON.stringify(this.states)}`);
    }
  }
}

// "s:<min>:<max>": the single chat's conversation id (DESIGN.md section 5).
export function singleChat(a: string, b: string): string {
  return a < b ? `s:${a}:${b}` : `s:${b}:${a}`;
}

// Uids unique to one run, so tests sharing a server do not see each other's conversations.
export function uniqueUid(name: string): string {
  return `${name}-${process.pid}-${Math.floor(Math.random() * 1e9).toString(36)}`;
}

// Seqs strictly one apart from `first`: "" when so, else the first place they are not.
export function contiguityError(messages: Message[], first: number): string {
  for (let i = 0; i < messages.length; ++i) {
    if (messages[i]!.seq !== first + i) {
      return `at index ${i}: seq ${messages[i]!.seq}, expected ${first + i}`;
    }
  }
  return "";
}
