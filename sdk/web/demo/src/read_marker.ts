import type { ImClient } from "@im-cluster/web-sdk";

// Moves one conversation's read cursor up to what the page has shown, while the page is
// visible: one markRead in flight at a time, the newest wish sent when it returns. A failed one
// is retried at the next message or visibility change.
export class ReadMarker {
  private readSeq = 0;
  private wanted = 0;
  private inFlight = false;

  constructor(
    private readonly client: ImClient,
    private readonly convId: string,
    private readonly onRead: (readSeq: number) => void = () => {},
  ) {}

  // The cursor as the server reports it (the conversation list, another device's receipt).
  noteRead(readSeq: number): void {
    this.readSeq = Math.max(this.readSeq, readSeq);
  }

  markShown(newestSeq: number): void {
    this.wanted = Math.max(this.wanted, newestSeq);
    this.pump();
  }

  private pump(): void {
    if (this.inFlight || this.wanted <= this.readSeq) return;
    if (document.visibilityState !== "visible") return;
    this.inFlight = true;
    const target = this.wanted;
    this.client.markRead(this.convId, target).then(
      (stored) => {
        this.inFlight = false;
        this.noteRead(stored);
        this.onRead(this.readSeq);
        this.pump();
      },
      (error) => {
        this.inFlight = false;
        console.warn(`markRead ${this.convId} ${target}:`, error);
      },
    );
  }
}
