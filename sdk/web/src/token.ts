// The uid a login token names: base64url(json{uid, exp, dev?}) "." signature (DESIGN.md 4). The
// client reads it, unverified, only to key its saved state before the first login; the server
// verifies the token. "" when the token is opaque.
export function uidFromToken(token: string): string {
  const dot = token.indexOf(".");
  if (dot <= 0) return "";
  try {
    const base64 = token.slice(0, dot).replace(/-/g, "+").replace(/_/g, "/");
    const binary = atob(base64 + "=".repeat((4 - (base64.length % 4)) % 4));
    const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
    const claims: unknown = JSON.parse(new TextDecoder().decode(bytes));
    if (typeof claims === "object" && claims !== null && "uid" in claims) {
      const uid = (claims as { uid: unknown }).uid;
      return typeof uid === "string" ? uid : "";
    }
  } catch {
    // Not base64url JSON: an opaque token.
  }
  return "";
}
