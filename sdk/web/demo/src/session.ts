import {
  Code,
  ImClient,
  InMemoryStateStore,
  IndexedDbStateStore,
  type ClientListener,
  type ConnectionState,
  type StateStore,
} from "@im-cluster/web-sdk";
import { fetchDevLogin } from "./dev_login.js";

// What the page shows of the connection: the client's state, or "offline" while the browser
// says it has no network.
export type ShownState = ConnectionState | "offline";

// One id per browser profile and role, kept across reloads: the gateway kicks an older login of
// the same device, so two tabs of one page take turns (the older one shows "kicked").
function deviceId(role: string): string {
  const key = `im-demo-device-${role}`;
  let id = localStorage.getItem(key);
  if (!id) {
    id = `web-${role}-${crypto.randomUUID().slice(0, 8)}`;
    localStorage.setItem(key, id);
  }
  return id;
}

// IndexedDB keeps the outbox and the cursors across reloads; memory when the browser refuses it
// (some private modes).
async function openStore(): Promise<StateStore> {
  try {
    return await IndexedDbStateStore.open("im-demo");
  } catch (error) {
    console.warn("IndexedDB unavailable, state kept in memory:", error);
    return new InMemoryStateStore();
  }
}

// Logs `uid` in and keeps it connected: renews an expired token. The SDK follows the browser's
// network events itself (offline: it disconnects at once and sends wait in the outbox; online: it
// reconnects now); the page only shows them.
export async function startSession(
  uid: string,
  role: string,
  listener: ClientListener,
  showState: (state: ShownState) => void,
): Promise<ImClient> {
  const device = deviceId(role);
  const login = await fetchDevLogin(uid, device);
  const client: ImClient = new ImClient({
    urls: login.wsUrls,
    token: login.token,
    device,
    store: await openStore(),
    listener: {
      ...listener,
      onStateChanged: (state, reason) => {
        showState(navigator.onLine ? state : "offline");
        if (state === "auth_failed" && reason.code === Code.TOKEN_EXPIRED) {
          fetchDevLogin(uid, device).then(
            (renewed) => client.setToken(renewed.token),
            (error) => console.error("token renewal failed:", error),
          );
        }
        listener.onStateChanged?.(state, reason);
      },
    },
  });
  window.addEventListener("offline", () => showState("offline"));
  window.addEventListener("online", () => showState(client.state));
  client.start();
  return client;
}
