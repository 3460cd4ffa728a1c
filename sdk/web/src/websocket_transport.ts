import type { Transport, TransportConnection, TransportHandlers } from "./transport.js";

// The subprotocol the gateway speaks: one im.v1.Frame per binary message, no length prefix.
export const SUBPROTOCOL = "im.v1";

// TLS settings for wss:// gateways, which only a WebSocket class taking a third, options argument
// applies: the `ws` package's, in Node. A browser verifies a gateway's certificate against its own
// roots and takes no settings.
export interface WebSocketTlsOptions {
  // PEM: the certificate authorities a gateway's certificate must chain to, instead of Node's.
  ca: string | string[];
}

// A WebSocket class: the browser's global WebSocket, or `WebSocket` from the `ws` package in
// Node. Typed loosely on purpose: the two differ in their event types, and the client uses only
// what they share (on* handlers, binaryType, protocol, send, close).
export type WebSocketConstructor = new (
  url: string,
  protocols: string[],
  options?: WebSocketTlsOptions,
) => object;

interface SharedWebSocket {
  binaryType: string;
  readonly protocol: string;
  onopen: (() => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
}

// Code 1006: the connection ended without a close frame (refused, reset, never opened).
const ABNORMAL_CLOSURE = 1006;

class WebSocketConnection implements TransportConnection {
  private ended = false;
  private lastError = "";

  constructor(
    private readonly socket: SharedWebSocket,
    private readonly handlers: TransportHandlers,
  ) {
    socket.binaryType = "arraybuffer";
    socket.onopen = () => {
      if (this.ended) return;
      // A gateway that did not take the subprotocol speaks something else: do not log in there.
      if (socket.protocol !== SUBPROTOCOL) {
        return this.violation(`the server did not agree to subprotocol ${SUBPROTOCOL}`);
      }
      handlers.onOpen();
    };
    socket.onmessage = (event) => {
      if (this.ended) return;
      if (event.data instanceof ArrayBuffer) return handlers.onMessage(new Uint8Array(event.data));
      if (ArrayBuffer.isView(event.data)) {
        const view = event.data;
        return handlers.onMessage(new Uint8Array(view.buffer, view.byteOffset, view.byteLength));
      }
      this.violation("a text message from the server (the protocol is binary)");
    };
    // Browsers say nothing useful in an error event; the close event that follows has the code.
    // Node's ws says why (a refused certificate, a refused connection): kept as the reason.
    socket.onerror = (event) => {
      const message = (event as { message?: unknown } | null)?.message;
      if (typeof message === "string") this.lastError = message;
    };
    socket.onclose = (event) => {
      if (this.ended) return;
      this.ended = true;
      handlers.onClose(event.code || ABNORMAL_CLOSURE, event.reason || this.lastError);
    };
  }

  send(data: Uint8Array): void {
    if (this.ended) return;
    try {
      this.socket.send(data);
    } catch {
      // Sending on a socket that is closing: its close event reports the end.
    }
  }

  close(code: number, reason: string): void {
    if (this.ended) return;
    this.ended = true;
    try {
      this.socket.close(code, reason.slice(0, 120)); // a close reason is at most 123 bytes
    } catch {
      // Already closed.
    }
  }

  private violation(reason: string): void {
    this.handlers.onProtocolViolation(reason);
  }
}

// Connects with `webSocket` (defaults to globalThis.WebSocket), asking for subprotocol im.v1.
// `tls` needs a WebSocket class given explicitly: the global one of a browser (or of Node 22,
// undici's) would ignore it and verify against other roots than the caller meant.
export class WebSocketTransport implements Transport {
  private readonly webSocket: WebSocketConstructor;

  constructor(
    webSocket?: WebSocketConstructor,
    private readonly tls?: WebSocketTlsOptions,
  ) {
    const chosen = webSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!chosen) {
      throw new Error("no WebSocket class: pass one (e.g. WebSocket from the 'ws' package)");
    }
    if (tls && !webSocket) {
      throw new Error(
        "tlsCa needs a WebSocket class that takes TLS options (the 'ws' package's); " +
          "a browser verifies gateways against its own roots",
      );
    }
    this.webSocket = chosen;
  }

  connect(url: string, handlers: TransportHandlers): TransportConnection {
    const socket = (
      this.tls
        ? new this.webSocket(url, [SUBPROTOCOL], this.tls)
        : new this.webSocket(url, [SUBPROTOCOL])
    ) as SharedWebSocket;
    return new WebSocketConnection(socket, handlers);
  }
}
