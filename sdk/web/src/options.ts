import { systemClock, type Clock } from "./clock.js";
import { InMemoryStateStore } from "./in_memory_state_store.js";
import { browserNetworkWatch, type NetworkWatch } from "./network_watch.js";
import type { StateStore } from "./state_store.js";
import type { Transport } from "./transport.js";
import type { ClientListener } from "./types.js";
import { WebSocketTransport, type WebSocketConstructor } from "./websocket_transport.js";

// 0 debug, 1 info, 2 warning.
export type LogFunction = (level: 0 | 1 | 2, line: string) => void;

export interface ClientOptions {
  // Gateways' WebSocket addresses (gateway.ws_listen): "ws://host:port/" or "wss://...". The
  // client starts at a random one (the first with startAtRandomGateway false) and moves to the
  // next on every failure and on GoAway.
  urls: string[];
  // base64url(json{uid, exp, dev?}).signature, minted by the app's backend (DESIGN.md section 4).
  token: string;
  device?: string; // stable per device; a second login of the same device kicks the first
  platform?: string;
  clientVersion?: string;
  listener?: ClientListener;
  // Where cursors and the outbox live; default InMemoryStateStore (IndexedDbStateStore in
  // browsers keeps them across reloads).
  store?: StateStore;
  // The WebSocket class: default globalThis.WebSocket (browsers, Node 22+); in Node 20 pass
  // `WebSocket` from the `ws` package. Ignored when `transport` is given.
  webSocket?: WebSocketConstructor;
  // Node with the `ws` package's WebSocket (given as webSocket): the certificate authorities (PEM)
  // a wss:// gateway's certificate must chain to, instead of Node's roots. Browsers always verify
  // against their own roots: there, leave it out (with no webSocket given it is refused).
  tlsCa?: string | string[];
  transport?: Transport;
  startAtRandomGateway?: boolean;
  // Connecting and logging in must finish within this, or the attempt counts as failed.
  connectTimeoutMs?: number;
  // Requests fail with DEADLINE_EXCEEDED after this, including time waiting for a connection.
  requestTimeoutMs?: number;
  // A send not confirmed within this is reported failed (DEADLINE_EXCEEDED), unless it is on
  // the wire then: its answer decides. 0: retry for as long as the client lives.
  sendTimeoutMs?: number;
  // Reconnect backoff: exponential with full jitter between these.
  reconnectInitialMs?: number;
  reconnectMaxMs?: number;
  // Sends on the wire at once, at most (the gateway allows 64 requests in flight).
  maxSendsInFlight?: number;
  // Delivered cursors are acked to the server (and saved to the store) this often.
  ackIntervalMs?: number;
  // A gap in a conversation is synced after this long: the missing push is usually just behind.
  gapWaitMs?: number;
  syncPage?: number;
  maxFrameBytes?: number;
  // How often the client checks its timers (heartbeat, retries, acks).
  tickMs?: number;
  // Where it hears the network go away and come back: default the browser's online/offline
  // events (none in Node). Away, the connection is dropped at once and no attempt is made until
  // it is back; back, the next attempt is made at once. null: none.
  network?: NetworkWatch | null;
  clock?: Clock;
  random?: () => number;
  log?: LogFunction;
}

export interface ResolvedOptions {
  urls: string[];
  token: string;
  device: string;
  platform: string;
  clientVersion: string;
  listener: ClientListener;
  store: StateStore;
  transport: Transport;
  startAtRandomGateway: boolean;
  connectTimeoutMs: number;
  requestTimeoutMs: number;
  sendTimeoutMs: number;
  reconnectInitialMs: number;
  reconnectMaxMs: number;
  maxSendsInFlight: number;
  ackIntervalMs: number;
  gapWaitMs: number;
  syncPage: number;
  maxFrameBytes: number;
  tickMs: number;
  network: NetworkWatch | null;
  clock: Clock;
  random: () => number;
  log: LogFunction;
}

export function resolveOptions(options: ClientOptions): ResolvedOptions {
  return {
    urls: [...options.urls],
    token: options.token,
    device: options.device ?? "web",
    platform: options.platform ?? "web",
    clientVersion: options.clientVersion ?? "im-web-sdk/0.1",
    listener: options.listener ?? {},
    store: options.store ?? new InMemoryStateStore(),
    // Made only when needed, so that a test's fake transport needs no WebSocket class.
    transport:
      options.transport ??
      new WebSocketTransport(
        options.webSocket,
        options.tlsCa !== undefined ? { ca: options.tlsCa } : undefined,
      ),
    startAtRandomGateway: options.startAtRandomGateway ?? true,
    connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
    requestTimeoutMs: options.requestTimeoutMs ?? 10_000,
    sendTimeoutMs: options.sendTimeoutMs ?? 0,
    reconnectInitialMs: options.reconnectInitialMs ?? 250,
    reconnectMaxMs: options.reconnectMaxMs ?? 30_000,
    maxSendsInFlight: options.maxSendsInFlight ?? 32,
    ackIntervalMs: options.ackIntervalMs ?? 500,
    gapWaitMs: options.gapWaitMs ?? 300,
    syncPage: options.syncPage ?? 200,
    maxFrameBytes: options.maxFrameBytes ?? 64 * 1024,
    tickMs: options.tickMs ?? 50,
    network: options.network === undefined ? browserNetworkWatch() : options.network,
    clock: options.clock ?? systemClock,
    random: options.random ?? Math.random,
    log: options.log ?? (() => {}),
  };
}
