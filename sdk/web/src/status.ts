import { Code } from "./gen/im/v1/client_pb.js";

export { Code };

// An outcome as the server reports it: `code` is a value of im.v1.Code (0 OK, below 100 the gRPC
// codes, from 100 up the protocol's own); branch on it, `message` is for logs only.
export interface Status {
  code: Code;
  message: string;
}

export const OK_STATUS: Status = Object.freeze({ code: Code.OK, message: "" });

export function codeName(code: Code): string {
  return Code[code] ?? String(code);
}

// The codes that mean "overloaded, come back later": they carry a retry hint.
export function isOverloadRefusal(code: Code): boolean {
  return code === Code.RESOURCE_EXHAUSTED || code === Code.TOO_MANY_IN_FLIGHT;
}

// After these the same request may succeed if sent again: a send retried with the same
// client_msg_id then gets the seq it was stored under (common/retry_hint.h).
export function isRetryable(code: Code): boolean {
  switch (code) {
    case Code.CANCELLED:
    case Code.UNKNOWN:
    case Code.DEADLINE_EXCEEDED:
    case Code.ABORTED:
    case Code.INTERNAL:
    case Code.UNAVAILABLE:
      return true;
    default:
      return isOverloadRefusal(code);
  }
}

// A refused token: the client stops until the app gives it a new one.
export function isAuthFailure(code: Code): boolean {
  return (
    code === Code.TOKEN_EXPIRED ||
    code === Code.TOKEN_INVALID ||
    code === Code.TOKEN_REVOKED ||
    code === Code.UNAUTHENTICATED
  );
}

// What a request's promise rejects with: the server's refusal, or why no answer came.
export class ImError extends Error {
  readonly code: Code;

  constructor(status: Status) {
    super(`${codeName(status.code)}${status.message ? `: ${status.message}` : ""}`);
    this.name = "ImError";
    this.code = status.code;
  }
}
