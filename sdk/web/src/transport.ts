// How the client reaches a gateway: one binary message per im.v1.Frame, both ways. The WebSocket
// one (websocket_transport.ts) is what apps use; tests put a fake one in its place.

export interface TransportHandlers {
  onOpen(): void;
  // One binary message: one serialized Frame.
  onMessage(data: Uint8Array): void;
  // A message the protocol does not allow (text): the client ends the connection.
  onProtocolViolation(reason: string): void;
  // The connection ended, or never opened. Called at most once, and never after close().
  onClose(code: number, reason: string): void;
}

export interface TransportConnection {
  send(data: Uint8Array): void;
  // Ends the connection; no handler runs afterwards.
  close(code: number, reason: string): void;
}

export interface Transport {
  connect(url: string, handlers: TransportHandlers): TransportConnection;
}
