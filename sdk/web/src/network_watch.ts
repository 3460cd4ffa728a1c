// Where the client hears that the device's network went away or came back. A browser's
// WebSocket can sit on a dead network until the heartbeat notices (Chromium holds its frames),
// while the page hears of it at once, by its "offline" and "online" events.
export interface NetworkWatch {
  readonly online: boolean;
  // Calls `onChange` on every change; returns what stops it.
  watch(onChange: (online: boolean) => void): () => void;
}

interface BrowserGlobals {
  addEventListener?: (type: string, listener: () => void) => void;
  removeEventListener?: (type: string, listener: () => void) => void;
  navigator?: { onLine?: unknown };
}

// The browser's navigator.onLine and window events; null where there are none (Node).
export function browserNetworkWatch(): NetworkWatch | null {
  const page = globalThis as BrowserGlobals;
  const { addEventListener: add, removeEventListener: remove, navigator } = page;
  if (typeof add !== "function" || typeof remove !== "function") return null;
  if (typeof navigator?.onLine !== "boolean") return null;
  return {
    get online() {
      return navigator.onLine === true;
    },
    watch(onChange) {
      const up = () => onChange(true);
      const down = () => onChange(false);
      add.call(page, "online", up);
      add.call(page, "offline", down);
      return () => {
        remove.call(page, "online", up);
        remove.call(page, "offline", down);
      };
    },
  };
}
