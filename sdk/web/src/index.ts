export { ImClient, type SendOptions } from "./client.js";
export type { ClientOptions, LogFunction } from "./options.js";
export { Code, ImError, codeName, isRetryable, type Status } from "./status.js";
export * from "./types.js";
export type { PendingSend } from "./pending_send.js";
export type { SavedState, StateStore } from "./state_store.js";
export { InMemoryStateStore } from "./in_memory_state_store.js";
export { IndexedDbStateStore } from "./indexed_db_state_store.js";
export type { Clock } from "./clock.js";
export { browserNetworkWatch, type NetworkWatch } from "./network_watch.js";
export type { Transport, TransportConnection, TransportHandlers } from "./transport.js";
export {
  SUBPROTOCOL,
  WebSocketTransport,
  type WebSocketConstructor,
  type WebSocketTlsOptions,
} from "./websocket_transport.js";
