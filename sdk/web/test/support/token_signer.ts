import { createHmac } from "node:crypto";

// The local cluster's development secret (deploy/local/server.yaml, logic.token_secret).
export const DEV_SECRET = "dev-secret-change-me";

// A login token as an app's backend mints it (common/token.cc): base64url(json{uid, exp, dev?})
// "." base64url(HMAC-SHA256(secret, first part)), unpadded.
export function signToken(
  uid: string,
  secret = DEV_SECRET,
  device?: string,
  ttlSec = 3600,
): string {
  const claims: Record<string, unknown> = { uid, exp: Math.floor(Date.now() / 1000) + ttlSec };
  if (device) claims.dev = device;
  const payload = Buffer.from(JSON.stringify(claims)).toString("base64url");
  const mac = createHmac("sha256", secret).update(payload).digest("base64url");
  return `${payload}.${mac}`;
}
