// Login tokens as an app's backend mints them (DESIGN.md section 4, common/token.cc):
// base64url(json{uid, iat, exp, dev?}) "." base64url(HMAC-SHA256(secret, first part)), unpadded.
import { createHmac } from "node:crypto";

const UID_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;
const DEVICE_PATTERN = /^[A-Za-z0-9_.:-]{1,64}$/;

export function signToken({ uid, device, secret, ttlSec, nowMs = Date.now() }) {
  const nowSec = Math.floor(nowMs / 1000);
  const claims = { uid, iat: nowSec, exp: nowSec + ttlSec };
  if (device) claims.dev = device;
  const payload = Buffer.from(JSON.stringify(claims)).toString("base64url");
  const mac = createHmac("sha256", secret).update(payload).digest("base64url");
  return `${payload}.${mac}`;
}

// The {uid, device?} of a token request, or a reason to refuse it.
export function parseTokenRequest(text) {
  let request;
  try {
    request = JSON.parse(text);
  } catch {
    return { error: "the body is not JSON" };
  }
  const uid = request?.uid;
  const device = request?.device ?? "";
  if (typeof uid !== "string" || !UID_PATTERN.test(uid)) {
    return { error: "uid: 1-64 of A-Z a-z 0-9 _ . -" };
  }
  if (typeof device !== "string" || (device !== "" && !DEVICE_PATTERN.test(device))) {
    return { error: "device: 1-64 of A-Z a-z 0-9 _ . : -" };
  }
  return { uid, device };
}
