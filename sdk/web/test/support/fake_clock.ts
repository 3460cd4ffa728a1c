import type { Clock } from "../../src/clock.js";

// Lets the event loop run what is ready: microtasks (listener calls, store operations) and
// promise chains a few levels deep.
export async function flush(): Promise<void> {
  for (let i = 0; i < 5; ++i) await new Promise((resolve) => setImmediate(resolve));
}

interface Timer {
  id: number;
  at: number;
  callback: () => void;
}

// A clock that moves only when the test says: timers fire in time order inside advance().
export class FakeClock implements Clock {
  private time = 1_000;
  private readonly wallOrigin = 1_700_000_000_000;
  private timers: Timer[] = [];
  private nextId = 1;

  now(): number {
    return this.time;
  }

  wallNow(): number {
    return this.wallOrigin + this.time;
  }

  setTimeout(callback: () => void, ms: number): unknown {
    const timer = { id: this.nextId++, at: this.time + Math.max(0, ms), callback };
    this.timers.push(timer);
    return timer.id;
  }

  clearTimeout(handle: unknown): void {
    this.timers = this.timers.filter((timer) => timer.id !== handle);
  }

  get pendingTimers(): number {
    return this.timers.length;
  }

  async advance(ms: number): Promise<void> {
    const end = this.time + ms;
    await flush(); // what the test's last call started runs first, as it would in real time
    for (;;) {
      const due = this.timers
        .filter((timer) => timer.at <= end)
        .sort((a, b) => a.at - b.at || a.id - b.id)[0];
      if (!due) break;
      this.timers = this.timers.filter((timer) => timer !== due);
      this.time = Math.max(this.time, due.at);
      due.callback();
      await flush();
    }
    this.time = end;
    await flush();
  }
}
