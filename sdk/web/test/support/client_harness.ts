import { ImClient } from "../../src/client.js";
import { Code } from "../../src/status.js";
import type { StateStore } from "../../src/state_store.js";
import type {
  ConnectionState,
  Message,
  ReadReceipt,
  SendResult,
  TypingNotice,
} from "../../src/types.js";
import type { ClientOptions } from "../../src/options.js";
import { FakeClock } from "./fake_clock.js";
import { FakeTransport, type FakeConnection } from "./fake_transport.js";

// A token the client can read its uid from; the fake gateway does not check the signature.
export function unsignedToken(uid: string): string {
  return `${Buffer.from(JSON.stringify({ uid, exp: 4102444800 })).toString("base64url")}.c2ln`;
}

// Everything a test sees of a client: its events in order.
export class Recorder {
  readonly states: { state: ConnectionState; code: number; message: string }[] = [];
  readonly messages: Message[] = [];
  readonly results: SendResult[] = [];
  readonly receipts: ReadReceipt[] = [];
  readonly typing: TypingNotice[] = [];

  seqs(convId: string): number[] {
    return this.messages.filter((m) => m.convId === convId).map((m) => m.seq);
  }
}

export interface Harness {
  client: ImClient;
  clock: FakeClock;
  transport: FakeTransport;
  events: Recorder;
}

// A client on a fake clock and a fake transport; randomness fixed at 0.5.
export function makeClient(overrides: Partial<ClientOptions> = {}, store?: StateStore): Harness {
  const clock = new FakeClock();
  const transport = new FakeTransport();
  const events = new Recorder();
  const client = new ImClient({
    urls: ["ws://gw-1", "ws://gw-2"],
    token: unsignedToken("alice"),
    device: "d1",
    transport,
    clock,
    random: () => 0.5,
    startAtRandomGateway: false,
    ...(store ? { store } : {}),
    listener: {
      onStateChanged: (state, reason) => events.states.push({ state, ...reason }),
      onMessages: (_convId, messages) => events.messages.push(...messages),
      onSendResult: (result) => events.results.push(result),
      onReadReceipt: (receipt) => events.receipts.push(receipt),
      onTyping: (notice) => events.typing.push(notice),
    },
    ...overrides,
  });
  return { client, clock, transport, events };
}

export interface ServerConversation {
  convId: string;
  maxSeq: number;
  deliveredSeq: number;
}

// Answers the login on the newest connection and the conversation list that follows.
export async function login(
  harness: Harness,
  conversations: ServerConversation[] = [],
  heartbeatSec = 30,
): Promise<FakeConnection> {
  const connection = harness.transport.last;
  connection.open();
  const loginReq = connection.lastOf("loginReq");
  connection.push(
    { case: "loginResp", value: { uid: "alice", heartbeatSec, status: { code: Code.OK } } },
    loginReq.id,
  );
  const list = connection.lastOf("conversationsReq");
  connection.push(
    {
      case: "conversationsResp",
      value: {
        conversations: conversations.map((c) => ({
          convId: c.convId,
          maxSeq: BigInt(c.maxSeq),
          deliveredSeq: BigInt(c.deliveredSeq),
        })),
      },
    },
    list.id,
  );
  await harness.clock.advance(0);
  return connection;
}

// Starts the client and waits for its first connection attempt.
export async function started(harness: Harness): Promise<FakeConnection> {
  harness.client.start();
  await harness.clock.advance(50);
  return harness.transport.last;
}

export function wireMessage(convId: string, seq: number, sender = "bob") {
  return {
    convId,
    seq: BigInt(seq),
    msgId: BigInt(1000 + seq),
    sender,
    clientMsgId: `c${seq}`,
    type: 1,
    body: new TextEncoder().encode(`m${seq}`),
  };
}
