// Exponential backoff with full jitter: attempt n waits a uniform random time in
// [0, min(max, initial * 2^n)], so that clients cut off together do not come back together.
export class Backoff {
  private attemptCount = 0;

  constructor(
    private readonly initialMs: number,
    private readonly maxMs: number,
    private readonly random: () => number = Math.random,
  ) {}

  // The wait before the next attempt; each call doubles the ceiling up to the maximum.
  nextDelayMs(): number {
    let ceiling = this.initialMs;
    for (let i = 0; i < this.attemptCount && ceiling < this.maxMs; ++i) ceiling *= 2;
    ceiling = Math.min(ceiling, this.maxMs);
    ++this.attemptCount;
    return this.jitter(ceiling);
  }

  reset(): void {
    this.attemptCount = 0;
  }

  get attempt(): number {
    return this.attemptCount;
  }

  // A uniform random integer in [0, bound].
  jitter(bound: number): number {
    if (bound <= 0) return 0;
    return Math.min(bound, Math.floor(this.random() * (bound + 1)));
  }

  // The wait after a refusal with a retry hint: the hint plus a random part as long again, so a
  // refused crowd comes back spread over [hint, 2 x hint] instead of all at the hint.
  afterHintMs(hintMs: number): number {
    return hintMs + this.jitter(hintMs);
  }
}
