// How many sends the client keeps unanswered at once, adapted to the server as TCP adapts its
// congestion window (common/send_window.h): it starts at the maximum; an overload refusal halves
// it (once per burst: refusals within the calm period answer sends made before the halving);
// each window's worth of acknowledged sends widens it by one again. Without it every refused
// device resends its whole window when the hint expires.
export class SendWindow {
  private readonly max: number;
  private windowSize: number;
  private acked = 0;
  private calmUntilMs = 0;

  constructor(max: number) {
    this.max = Math.max(1, Math.floor(max));
    this.windowSize = this.max;
  }

  get size(): number {
    return this.windowSize;
  }

  onAcked(): void {
    if (this.windowSize >= this.max) return;
    if (++this.acked >= this.windowSize) {
      ++this.windowSize;
      this.acked = 0;
    }
  }

  onRefused(nowMs: number, calmMs: number): void {
    if (nowMs < this.calmUntilMs) return;
    this.windowSize = Math.max(1, Math.floor(this.windowSize / 2));
    this.acked = 0;
    this.calmUntilMs = nowMs + calmMs;
  }
}
