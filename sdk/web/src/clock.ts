// Time as the client sees it, injected so that tests drive it (a fake clock) instead of sleeping.
export interface Clock {
  // Milliseconds on a clock that never goes back: timeouts, heartbeats, retry times.
  now(): number;
  // Unix milliseconds: what is stored (a send's creation and deadline survive a restart).
  wallNow(): number;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  wallNow: () => Date.now(),
  setTimeout: (callback, ms) => globalThis.setTimeout(callback, ms),
  clearTimeout: (handle) => globalThis.clearTimeout(handle as ReturnType<typeof setTimeout>),
};
