// How the demo's users reach the support desk: every user has one single chat with the desk's
// uid; staff on duty are devices of that uid (README.md says why).
export const DESK_UID = "support";

// The single chat between two users, as the server names it (DESIGN.md section 5).
export function singleChatId(a: string, b: string): string {
  return a < b ? `s:${a}:${b}` : `s:${b}:${a}`;
}

// The other member of a single chat, seen from `self`; "" when `convId` is not a single chat.
export function peerOf(convId: string, self: string): string {
  const parts = convId.split(":");
  if (parts.length !== 3 || parts[0] !== "s") return "";
  return parts[1] === self ? parts[2]! : parts[1]!;
}
