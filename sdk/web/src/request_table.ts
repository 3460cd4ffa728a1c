import type { Frame } from "./gen/im/v1/client_pb.js";
import type { Status } from "./status.js";

// Called with the response frame, or with why none came (frame null).
export type ResponseHandler = (status: Status | null, response: Frame | null) => void;

interface PendingRequest {
  frame: Frame;
  handler: ResponseHandler;
  deadlineMs: number;
  onWire: boolean;
  // Safe to send again on the next connection if this one drops before the answer.
  resendOnReconnect: boolean;
}

// The requests waiting for an answer, by Frame.id. A request made while disconnected waits here
// until a login sends it, up to its deadline.
export class RequestTable {
  private readonly requests = new Map<bigint, PendingRequest>();

  add(
    frame: Frame,
    handler: ResponseHandler,
    deadlineMs: number,
    resendOnReconnect: boolean,
  ): void {
    this.requests.set(frame.id, { frame, handler, deadlineMs, onWire: false, resendOnReconnect });
  }

  // Marks the requests not on the wire as sent and returns their frames, oldest first.
  takeUnsent(): Frame[] {
    const unsent: Frame[] = [];
    for (const request of this.requests.values()) {
      if (request.onWire) continue;
      request.onWire = true;
      unsent.push(request.frame);
    }
    return unsent;
  }

  // The answer to request `id`, or undefined (a late answer to a request that timed out).
  takeHandler(id: bigint): ResponseHandler | undefined {
    const request = this.requests.get(id);
    if (!request) return undefined;
    this.requests.delete(id);
    return request.handler;
  }

  // The connection is gone: requests on it that must not be repeated fail with `status`; the
  // others wait for the next connection.
  onDisconnected(status: Status): void {
    const failed: ResponseHandler[] = [];
    for (const [id, request] of this.requests) {
      if (request.onWire && !request.resendOnReconnect) {
        failed.push(request.handler);
        this.requests.delete(id);
      } else {
        request.onWire = false;
      }
    }
    for (const handler of failed) handler(status, null);
  }

  expire(nowMs: number, status: Status): void {
    const expired: ResponseHandler[] = [];
    for (const [id, request] of this.requests) {
      if (request.deadlineMs > nowMs) continue;
      expired.push(request.handler);
      this.requests.delete(id);
    }
    for (const handler of expired) handler(status, null);
  }

  failAll(status: Status): void {
    const all = [...this.requests.values()].map((request) => request.handler);
    this.requests.clear();
    for (const handler of all) handler(status, null);
  }

  get size(): number {
    return this.requests.size;
  }
}
