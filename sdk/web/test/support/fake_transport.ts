import { create } from "@bufbuild/protobuf";
import { FrameSchema, type Frame } from "../../src/gen/im/v1/client_pb.js";
import type { Transport, TransportConnection, TransportHandlers } from "../../src/transport.js";
import { decodeFrame, encodeFrame, type FrameBody } from "../../src/wire.js";

type FrameCase = NonNullable<Frame["body"]["case"]>;

// The gateway's end of one connection, driven by the test: what the client wrote, decoded, and
// ways to answer, push and close.
export class FakeConnection implements TransportConnection {
  readonly sent: Frame[] = [];
  closedByClient: { code: number; reason: string } | null = null;

  constructor(
    readonly url: string,
    private readonly handlers: TransportHandlers,
  ) {}

  send(data: Uint8Array): void {
    const frame = decodeFrame(data);
    if (!frame) throw new Error("the client wrote bytes that are not a Frame");
    this.sent.push(frame);
  }

  close(code: number, reason: string): void {
    this.closedByClient = { code, reason };
  }

  open(): void {
    this.handlers.onOpen();
  }

  // Sends a frame to the client as the gateway would (encoded, one message).
  push(body: FrameBody, id = 0n): void {
    this.handlers.onMessage(encodeFrame(create(FrameSchema, { id, body })));
  }

  pushBytes(bytes: Uint8Array): void {
    this.handlers.onMessage(bytes);
  }

  sendText(): void {
    this.handlers.onProtocolViolation("a text message from the server (the protocol is binary)");
  }

  closeFromServer(code: number, reason: string): void {
    this.handlers.onClose(code, reason);
  }

  // Frames of one kind the client wrote, in order.
  framesOf<K extends FrameCase>(kind: K): Frame[] {
    return this.sent.filter((frame) => frame.body.case === kind);
  }

  lastOf<K extends FrameCase>(kind: K): Frame {
    const frames = this.framesOf(kind);
    const last = frames[frames.length - 1];
    if (!last) throw new Error(`the client wrote no ${kind}`);
    return last;
  }
}

export class FakeTransport implements Transport {
  readonly connections: FakeConnection[] = [];

  connect(url: string, handlers: TransportHandlers): TransportConnection {
    const connection = new FakeConnection(url, handlers);
    this.connections.push(connection);
    return connection;
  }

  get last(): FakeConnection {
    const last = this.connections[this.connections.length - 1];
    if (!last) throw new Error("the client opened no connection");
    return last;
  }
}
