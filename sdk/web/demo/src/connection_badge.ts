import type { ShownState } from "./session.js";

const LABELS: Record<ShownState, string> = {
  idle: "Disconnected",
  connecting: "Connecting…",
  connected: "Online",
  kicked: "Opened elsewhere",
  auth_failed: "Signed out",
  offline: "Offline",
};

// The connection state in the page's header; `data-state` carries the raw state.
export function showConnection(badge: HTMLElement, state: ShownState): void {
  badge.dataset.state = state;
  badge.textContent = LABELS[state];
}
