// 16 random bytes as hex: unique per sender, which makes a send idempotent.
export function randomClientMsgId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
