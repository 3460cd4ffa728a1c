import { Backoff } from "./backoff.js";
import {
  Kick_Reason,
  type Frame,
  type LoginResp,
  type MessagePush,
  type SendResp,
} from "./gen/im/v1/client_pb.js";
import { Inbox, type Delivery } from "./inbox.js";
import type { ResolvedOptions } from "./options.js";
import { Outbox } from "./outbox.js";
import type { PendingSend } from "./pending_send.js";
import { RequestTable } from "./request_table.js";
import { SendWindow } from "./send_window.js";
import {
  Code,
  ImError,
  codeName,
  isAuthFailure,
  isOverloadRefusal,
  isRetryable,
  type Status,
} from "./status.js";
import { uidFromToken } from "./token.js";
import type { TransportConnection } from "./transport.js";
import type { ConnectionState, Conversation, Message, SendResult } from "./types.js";
import {
  conversationOf,
  decodeFrame,
  encodeFrame,
  makeFrame,
  messageOf,
  rangesOf,
  statusOf,
  type FrameBody,
} from "./wire.js";

const CONVERSATION_PAGE = 100;
// Room in a frame beside the body (ids, conversation, framing).
const SEND_OVERHEAD_BYTES = 1024;
// WebSocket close codes the client uses.
const CLOSE_NORMAL = 1000;
const CLOSE_PROTOCOL_ERROR = 1002;
const CLOSE_NOT_A_FRAME = 1007;

interface SendOnWire {
  clientMsgId: string;
  sentMs: number;
}

// Everything the client owns (sdk/client_core.cc, on JavaScript's one thread): the connection and
// its lifecycle (connect, login, heartbeat, backoff, GoAway, Kick), the request table, the outbox
// and the inbox. A timer ticks every `tickMs` while there is anything to watch; events from the
// transport and the app's calls run in between.
export class ClientCore {
  private uid: string; // the store's key: the token's uid, else the login's
  private state: ConnectionState = "idle";
  private running = false;
  private closed = false;
  private networkUp = true; // as options.network says; no attempt while it is down
  private unwatchNetwork: () => void = () => {};
  private connection: TransportConnection | null = null;
  private connectionGeneration = 0; // events of older connections are ignored
  private loggedIn = false;
  private loggedInUid = "";
  private loginFrameId = 0n;
  private attemptDeadlineMs = 0;
  private reconnectAtMs = 0;
  private gatewayIndex = 0;
  private lastError = ""; // the last Error frame, to explain the close that follows
  private readonly backoff: Backoff;
  private readonly sendWindow: SendWindow;
  private heartbeatMs = 30_000;
  private lastPingMs = 0;
  private lastReceivedMs = 0;
  private nextFrameId = 1n;
  private readonly requests = new RequestTable();
  private readonly sendsOnWire = new Map<bigint, SendOnWire>();
  private readonly outbox = new Outbox();
  private readonly inbox: Inbox;
  private stateLoaded = false;
  private listing = false; // the conversation list after login is being read
  private lastAckMs = 0;
  private timer: unknown = null;
  // Store operations run one at a time, in the order they were asked for.
  private storeChain: Promise<void> = Promise.resolve();

  constructor(private readonly options: ResolvedOptions) {
    this.uid = uidFromToken(options.token);
    this.backoff = new Backoff(options.reconnectInitialMs, options.reconnectMaxMs, options.random);
    this.sendWindow = new SendWindow(options.maxSendsInFlight);
    this.inbox = new Inbox(options.gapWaitMs);
    if (options.startAtRandomGateway && options.urls.length > 0) {
      this.gatewayIndex = this.backoff.jitter(options.urls.length - 1);
    }
    if (options.network) {
      this.networkUp = options.network.online;
      this.unwatchNetwork = options.network.watch((online) => this.setNetworkAvailable(online));
    }
    this.loadState();
  }

  get connectionState(): ConnectionState {
    return this.state;
  }

  get userId(): string {
    return this.loggedInUid || this.uid;
  }

  delivered(convId: string): number {
    return this.inbox.delivered(convId);
  }

  // ---- app calls ----

  start(): void {
    if (this.closed || this.running) return;
    this.running = true;
    if (this.options.urls.length === 0) {
      return this.setState("auth_failed", {
        code: Code.INVALID_ARGUMENT,
        message: "no gateway URL",
      });
    }
    this.reconnectAtMs = 0;
    this.setState("connecting", { code: Code.OK, message: "" });
    this.ensureTicking();
  }

  // Disconnects and stops reconnecting; sends stay in the outbox, requests fail (CANCELLED).
  stop(): void {
    this.running = false;
    if (this.connection) this.drop("stopped by the app", -1);
    this.requests.failAll({ code: Code.CANCELLED, message: "the client was stopped" });
    this.setState("idle", { code: Code.OK, message: "" });
  }

  // Stops, saves the cursors and releases the timer; the client cannot start again.
  async close(): Promise<void> {
    if (this.closed) return this.storeChain;
    this.stop();
    this.closed = true;
    this.unwatchNetwork();
    if (this.timer !== null) this.options.clock.clearTimeout(this.timer);
    this.timer = null;
    const cursors = this.inbox.cursors();
    if (this.uid && cursors.size > 0) {
      this.withStore("cursors not saved", (store) => store.saveCursors(this.uid, cursors));
    }
    return this.storeChain;
  }

  setToken(token: string): void {
    this.options.token = token;
    if (this.running && (this.state === "auth_failed" || this.state === "kicked")) {
      this.backoff.reset();
      this.reconnectAtMs = 0;
      this.setState("connecting", { code: Code.OK, message: "" });
      this.ensureTicking();
    }
  }

  // The device's network went away or came back. Away: the connection is dropped now rather
  // than when the heartbeat notices, and no attempt is made until it is back (sends wait in the
  // outbox). Back: the next attempt is made now, whatever the backoff had come to.
  setNetworkAvailable(available: boolean): void {
    if (available === this.networkUp || this.closed) return;
    this.networkUp = available;
    this.log(1, available ? "the network is back" : "the network is gone");
    if (!available) {
      if (this.connection) this.drop("the network is gone", -1);
      return;
    }
    this.backoff.reset();
    this.reconnectAtMs = 0;
    this.ensureTicking();
  }

  queueSend(send: PendingSend): void {
    if (send.createdMs === 0) send.createdMs = this.options.clock.wallNow();
    if (this.closed) {
      return this.reportSendResult(send, { code: Code.CANCELLED, message: "the client is closed" });
    }
    if (send.deadlineMs === 0 && this.options.sendTimeoutMs > 0) {
      send.deadlineMs = send.createdMs + this.options.sendTimeoutMs;
    }
    if ((send.convId === "") === (send.toUid === "")) {
      return this.reportSendResult(send, {
        code: Code.INVALID_ARGUMENT,
        message: "name a conversation or a peer",
      });
    }
    const estimate =
      send.body.length + send.convId.length + send.toUid.length + SEND_OVERHEAD_BYTES;
    if (estimate > this.options.maxFrameBytes) {
      return this.reportSendResult(send, {
        code: Code.BODY_TOO_LARGE,
        message: "the message does not fit in one frame",
      });
    }
    // Kept in the store before it can go on the wire, so that a restart resends it.
    this.storeChain = this.storeChain.then(async () => {
      if (this.uid) {
        try {
          await this.options.store.addPending(this.uid, send);
        } catch (error) {
          return this.reportSendResult(send, {
            code: Code.INTERNAL,
            message: `outbox not saved: ${String(error)}`,
          });
        }
      }
      if (!this.outbox.add(send)) {
        return this.reportSendResult(send, {
          code: Code.ALREADY_EXISTS,
          message: "clientMsgId already queued",
        });
      }
      this.ensureTicking();
      this.pumpOutbox();
    });
  }

  // Sends `body` as a request once logged in (waiting for a connection up to the request
  // timeout) and resolves with the response frame; rejects with ImError when no answer came.
  // `resendOnReconnect`: safe to send again if the connection drops before the answer.
  call(body: FrameBody, resendOnReconnect: boolean): Promise<Frame> {
    return new Promise((resolve, reject) => {
      if (this.closed)
        return reject(new ImError({ code: Code.CANCELLED, message: "the client is closed" }));
      this.request(body, resendOnReconnect, (status, response) => {
        if (response) resolve(response);
        else reject(new ImError(status ?? { code: Code.UNKNOWN, message: "no answer" }));
      });
    });
  }

  // Writes a frame that has no response (TypingReq) when logged in; else drops it: it is
  // transient, and stale by the time a connection is back.
  notice(body: FrameBody): void {
    if (this.loggedIn) this.write(makeFrame(body));
  }

  // ---- timers ----

  private ensureTicking(): void {
    if (this.timer !== null || this.closed) return;
    this.timer = this.options.clock.setTimeout(() => this.onTimer(), this.options.tickMs);
  }

  private onTimer(): void {
    this.timer = null;
    this.tick();
    // Nothing to watch (stopped, no request waiting, no send that can expire): let the process
    // or page sleep; the next call starts the timer again.
    if (this.running || this.requests.size > 0 || this.outbox.hasDeadlines()) this.ensureTicking();
  }

  private tick(): void {
    const now = this.options.clock.now();
    this.requests.expire(now, {
      code: Code.DEADLINE_EXCEEDED,
      message: "no answer within the request timeout",
    });
    this.expireSends();
    if (
      this.running &&
      this.networkUp &&
      !this.connection &&
      this.reconnectAtMs <= now &&
      this.state === "connecting" &&
      this.stateLoaded
    ) {
      return this.connect();
    }
    if (!this.connection) return;
    if (!this.loggedIn) {
      if (now > this.attemptDeadlineMs) this.drop("connecting and logging in timed out", -1);
      return;
    }
    if (now - this.lastReceivedMs > this.heartbeatMs + this.options.requestTimeoutMs) {
      return this.drop("the gateway went silent", -1);
    }
    for (const send of this.sendsOnWire.values()) {
      if (now - send.sentMs > this.options.requestTimeoutMs)
        return this.drop("a send went unanswered", -1);
    }
    if (now - this.lastPingMs >= this.heartbeatMs) {
      this.lastPingMs = now;
      // Browsers cannot send WebSocket pings: the heartbeat is the protocol's own Ping frame.
      this.write(
        makeFrame(
          {
            case: "ping",
            value: { clientTimeMs: BigInt(Math.floor(this.options.clock.wallNow())) },
          },
          this.takeFrameId(),
        ),
      );
    }
    this.startDueSyncs();
    if (now - this.lastAckMs >= this.options.ackIntervalMs) this.flushAcks();
    this.pumpOutbox();
  }

  // ---- connection lifecycle ----

  private connect(): void {
    const url = this.options.urls[this.gatewayIndex % this.options.urls.length]!;
    this.log(0, `connecting to ${url}`);
    this.attemptDeadlineMs = this.options.clock.now() + this.options.connectTimeoutMs;
    this.lastError = "";
    const generation = ++this.connectionGeneration;
    const current = () => generation === this.connectionGeneration && !this.closed;
    try {
      this.connection = this.options.transport.connect(url, {
        onOpen: () => current() && this.onOpen(),
        onMessage: (data) => current() && this.onMessage(data),
        onProtocolViolation: (reason) => current() && this.drop(reason, -1, CLOSE_PROTOCOL_ERROR),
        onClose: (code, reason) => current() && this.onClosed(code, reason),
      });
    } catch (error) {
      this.connection = null;
      this.drop(`cannot connect to ${url}: ${String(error)}`, -1);
    }
  }

  private onOpen(): void {
    this.loginFrameId = this.takeFrameId();
    const { token, device, platform, clientVersion } = this.options;
    this.write(
      makeFrame(
        { case: "loginReq", value: { token, device, platform, clientVersion } },
        this.loginFrameId,
      ),
    );
  }

  private onClosed(code: number, reason: string): void {
    this.connection = null; // already closed: drop() must not close it again
    const why = `closed by the gateway (${code}${reason ? ` ${reason}` : ""})`;
    this.drop(this.lastError ? `${why} after ${this.lastError}` : why, -1);
  }

  // Ends the connection. `reconnectAfterMs` < 0: after the backoff, at the next gateway.
  private drop(reason: string, reconnectAfterMs: number, closeCode = CLOSE_NORMAL): void {
    const wasLoggedIn = this.loggedIn;
    const connection = this.connection;
    this.connection = null;
    ++this.connectionGeneration;
    connection?.close(closeCode, reason);
    this.loggedIn = false;
    this.listing = false;
    this.outbox.requeueAll();
    this.sendsOnWire.clear();
    this.inbox.abortSyncs();
    this.requests.onDisconnected({ code: Code.UNAVAILABLE, message: `connection lost: ${reason}` });
    this.log(1, `${wasLoggedIn ? "disconnected" : "connection attempt failed"}: ${reason}`);
    if (this.options.urls.length > 0)
      this.gatewayIndex = (this.gatewayIndex + 1) % this.options.urls.length;
    this.reconnectAtMs =
      this.options.clock.now() +
      (reconnectAfterMs >= 0 ? reconnectAfterMs : this.backoff.nextDelayMs());
    if (this.running && this.state !== "kicked" && this.state !== "auth_failed") {
      this.setState("connecting", { code: Code.UNAVAILABLE, message: reason });
    }
  }

  private onMessage(data: Uint8Array): void {
    if (data.length > this.options.maxFrameBytes) {
      return this.drop(
        `a frame of ${data.length} bytes, above maxFrameBytes`,
        -1,
        CLOSE_PROTOCOL_ERROR,
      );
    }
    const frame = decodeFrame(data);
    if (!frame) return this.drop("a message that is not an im.v1.Frame", -1, CLOSE_NOT_A_FRAME);
    this.lastReceivedMs = this.options.clock.now();
    this.onFrame(frame);
  }

  private onFrame(frame: Frame): void {
    const body = frame.body;
    switch (body.case) {
      case "loginResp":
        if (frame.id === this.loginFrameId) this.onLoginResp(body.value);
        return;
      case "pong":
        return;
      case "sendResp":
        return this.onSendResp(frame.id, body.value);
      case "messagePush":
        return this.onPush(body.value);
      case "readPush": {
        const { convId, reader, readSeq } = body.value;
        return this.notify((l) => l.onReadReceipt?.({ convId, reader, readSeq: Number(readSeq) }));
      }
      case "receiptsPush":
        for (const { convId, reader, readSeq } of body.value.receipts) {
          this.notify((l) => l.onReadReceipt?.({ convId, reader, readSeq: Number(readSeq) }));
        }
        return;
      case "typingPush": {
        const { convId, uid } = body.value;
        return this.notify((l) => l.onTyping?.({ convId, uid }));
      }
      case "kick": {
        const reason: Status = {
          code: Code.UNAVAILABLE,
          message: `kicked (${Kick_Reason[body.value.reason] ?? body.value.reason}): ${body.value.message}`,
        };
        this.setState("kicked", reason);
        return this.drop(reason.message, -1);
      }
      case "goAway": {
        // The gateway is draining: go elsewhere after its hint, spread so that its clients do
        // not all land on the next gateway in the same instant.
        const hint = body.value.reconnectAfterMs;
        return this.drop(
          "the gateway is draining (GoAway)",
          hint + this.backoff.jitter(Math.max(Math.floor(hint / 2), 200)),
        );
      }
      case "error":
        this.lastError = `${codeName(body.value.code)}: ${body.value.message}`;
        this.log(2, `error from the gateway: ${this.lastError}`);
        return;
      default:
        break;
    }
    this.requests.takeHandler(frame.id)?.(null, frame);
  }

  private onLoginResp(resp: LoginResp): void {
    const status = statusOf(resp.status);
    if (status.code === Code.OK) return this.onLoggedIn(resp);
    if (isAuthFailure(status.code)) this.setState("auth_failed", status);
    else if (status.code === Code.TOO_MANY_DEVICES) this.setState("kicked", status);
    // An overloaded cluster says when to come back; otherwise the backoff decides.
    const hint = resp.status?.retryAfterMs ?? 0;
    this.drop(
      `login refused: ${codeName(status.code)} ${status.message}`,
      hint > 0 ? Math.max(this.backoff.afterHintMs(hint), this.backoff.nextDelayMs()) : -1,
    );
  }

  private onLoggedIn(resp: LoginResp): void {
    const generation = this.connectionGeneration;
    this.loggedIn = true;
    this.loggedInUid = resp.uid;
    this.backoff.reset();
    this.heartbeatMs = Math.max(1000, resp.heartbeatSec * 1000);
    this.lastPingMs = this.options.clock.now();
    this.setState("connected", { code: Code.OK, message: "" });
    for (const frame of this.requests.takeUnsent()) this.write(frame);
    if (!this.uid) {
      // An opaque token: the login names the account whose saved state to load.
      this.uid = resp.uid;
      this.stateLoaded = false;
      this.loadState();
      this.storeChain = this.storeChain.then(() => {
        if (generation === this.connectionGeneration) this.afterLogin();
      });
      return;
    }
    this.afterLogin();
  }

  private afterLogin(): void {
    this.listConversationsForSync("", []);
    this.pumpOutbox();
  }

  private setState(state: ConnectionState, reason: Status): void {
    if (state === this.state) return;
    this.state = state;
    this.log(1, `state ${state}${reason.message ? `: ${reason.message}` : ""}`);
    this.notify((l) => l.onStateChanged?.(state, reason));
  }

  private write(frame: Frame): void {
    this.connection?.send(encodeFrame(frame));
  }

  private takeFrameId(): bigint {
    return this.nextFrameId++;
  }

  // ---- requests ----

  private request(
    body: FrameBody,
    resendOnReconnect: boolean,
    handler: (status: Status | null, response: Frame | null) => void,
  ): void {
    const frame = makeFrame(body);
    frame.id = this.takeFrameId();
    this.requests.add(
      frame,
      handler,
      this.options.clock.now() + this.options.requestTimeoutMs,
      resendOnReconnect,
    );
    if (this.loggedIn) for (const unsent of this.requests.takeUnsent()) this.write(unsent);
    this.ensureTicking();
  }

  // ---- state ----

  private loadState(): void {
    if (!this.uid) {
      this.stateLoaded = true; // nothing to load until a login names the account
      return;
    }
    const uid = this.uid;
    this.withStore("saved state not loaded", async (store) => {
      const saved = await store.load(uid);
      this.inbox.restore(saved.cursors);
      for (const send of saved.outbox) this.outbox.add(send);
      if (saved.outbox.length > 0 || saved.cursors.size > 0) {
        this.log(
          1,
          `resumed ${saved.cursors.size} conversation cursors and ${saved.outbox.length} unsent messages`,
        );
      }
    });
    this.storeChain = this.storeChain.then(() => {
      this.stateLoaded = true;
    });
  }

  // Runs a store operation after those before it; a failure is logged, not thrown.
  private withStore(
    what: string,
    operation: (store: ResolvedOptions["store"]) => Promise<void>,
  ): void {
    this.storeChain = this.storeChain.then(() =>
      operation(this.options.store).catch((error: unknown) =>
        this.log(2, `${what}: ${String(error)}`),
      ),
    );
  }

  // ---- sending ----

  private pumpOutbox(): void {
    if (!this.loggedIn) return;
    const room = Math.max(0, this.sendWindow.size - this.outbox.inFlight);
    if (room === 0) return;
    const now = this.options.clock.now();
    for (const send of this.outbox.takeReady(now, room)) {
      const id = this.takeFrameId();
      const { convId, toUid, clientMsgId, type, body } = send;
      this.sendsOnWire.set(id, { clientMsgId, sentMs: now });
      this.write(
        makeFrame(
          {
            case: "sendReq",
            value: { convId, toUid, clientMsgId, type, body, refSeq: BigInt(send.refSeq) },
          },
          id,
        ),
      );
    }
  }

  private onSendResp(frameId: bigint, resp: SendResp): void {
    const onWire = this.sendsOnWire.get(frameId);
    if (!onWire) return;
    this.sendsOnWire.delete(frameId);
    const clientMsgId = onWire.clientMsgId;
    const status = statusOf(resp.status);
    const now = this.options.clock.now();
    if (isRetryable(status.code)) {
      this.log(0, `send ${clientMsgId} will be retried: ${codeName(status.code)}`);
      const hint = resp.status?.retryAfterMs ?? 0;
      const wait =
        hint > 0
          ? this.backoff.afterHintMs(hint)
          : this.options.reconnectInitialMs + this.backoff.jitter(1000);
      if (isOverloadRefusal(status.code)) this.sendWindow.onRefused(now, wait);
      this.outbox.requeue(clientMsgId, now + wait);
      return;
    }
    if (status.code === Code.OK) this.sendWindow.onAcked();
    const send = this.outbox.remove(clientMsgId);
    if (!send) return;
    if (this.uid)
      this.withStore("outbox entry not removed", (store) =>
        store.removePending(this.uid, clientMsgId),
      );
    this.reportSendResult(send, status, resp);
    if (status.code === Code.OK) {
      // The device's own message joins its conversation's stream like any other.
      const own: Message = {
        convId: resp.convId,
        seq: Number(resp.seq),
        msgId: resp.msgId.toString(),
        sender: this.loggedInUid,
        clientMsgId,
        type: send.type,
        body: send.body,
        createdMs: Number(resp.serverTimeMs),
        refSeq: send.refSeq,
        recalled: false,
        editedMs: 0,
      };
      this.deliver(this.inbox.receive(resp.convId, [own], now));
    }
    this.pumpOutbox();
  }

  private reportSendResult(send: PendingSend, status: Status, resp?: SendResp): void {
    const result: SendResult = {
      clientMsgId: send.clientMsgId,
      status,
      convId: resp?.convId || send.convId,
      seq: resp ? Number(resp.seq) : 0,
      msgId: resp ? resp.msgId.toString() : "0",
      serverTimeMs: resp ? Number(resp.serverTimeMs) : 0,
    };
    if (status.code !== Code.OK)
      this.log(2, `send ${send.clientMsgId} failed: ${codeName(status.code)} ${status.message}`);
    this.notify((l) => l.onSendResult?.(result));
  }

  private expireSends(): void {
    for (const send of this.outbox.takeExpired(this.options.clock.wallNow())) {
      if (this.uid)
        this.withStore("outbox entry not removed", (store) =>
          store.removePending(this.uid, send.clientMsgId),
        );
      this.reportSendResult(send, {
        code: Code.DEADLINE_EXCEEDED,
        message: "not sent within the send timeout",
      });
    }
  }

  // ---- receiving ----

  private onPush(push: MessagePush): void {
    // The frame's messages by conversation, keeping their order.
    const byConversation = new Map<string, Message[]>();
    for (const wire of push.messages) {
      const message = messageOf(wire);
      const list = byConversation.get(message.convId);
      if (list) list.push(message);
      else byConversation.set(message.convId, [message]);
    }
    const now = this.options.clock.now();
    for (const [convId, messages] of byConversation)
      this.deliver(this.inbox.receive(convId, messages, now));
  }

  private deliver(delivery: Delivery | null): void {
    if (!delivery) return;
    const { convId, messages } = delivery;
    this.notify((l) => l.onMessages?.(convId, messages));
  }

  // After login: lists every conversation, binds the inbox to what the server holds (where new
  // conversations start, which moved while the device was away) and starts the syncs due.
  private listConversationsForSync(pageToken: string, soFar: Conversation[]): void {
    this.listing = true;
    this.request(
      { case: "conversationsReq", value: { limit: CONVERSATION_PAGE, pageToken } },
      false,
      (status, response) => {
        if (!this.listing) return; // the connection that asked is gone
        const resp = response?.body.case === "conversationsResp" ? response.body.value : null;
        if (status || !resp || statusOf(resp.status).code !== Code.OK) {
          this.log(2, "conversation list after login failed; retrying");
          return this.listConversationsForSync("", []);
        }
        const collected = soFar.concat(resp.conversations.map(conversationOf));
        if (resp.nextPageToken) return this.listConversationsForSync(resp.nextPageToken, collected);
        this.listing = false;
        this.log(0, `reconciled ${collected.length} conversations`);
        for (const delivery of this.inbox.bind(collected, this.options.clock.now()))
          this.deliver(delivery);
        this.startDueSyncs();
      },
    );
  }

  private startDueSyncs(): void {
    if (!this.loggedIn || !this.inbox.bound) return;
    for (const { convId, afterSeq } of this.inbox.takeDueSyncs(this.options.clock.now())) {
      const value = { convId, afterSeq: BigInt(afterSeq), limit: this.options.syncPage };
      this.request({ case: "syncReq", value: value }, false, (failure, response) => {
        const now = this.options.clock.now();
        const resp = response?.body.case === "syncResp" ? response.body.value : null;
        if (failure || !resp) return this.inbox.onSyncFailed(convId, true, now);
        const status = statusOf(resp.status);
        if (status.code !== Code.OK) {
          this.log(2, `sync of ${convId} failed: ${codeName(status.code)}`);
          // A refused crowd comes back spread over the hint, not all at once.
          const hint = resp.status?.retryAfterMs ?? 0;
          return this.inbox.onSyncFailed(
            convId,
            isRetryable(status.code),
            now,
            hint > 0 ? this.backoff.afterHintMs(hint) : 0,
          );
        }
        const page = {
          messages: resp.messages.map(messageOf),
          holes: rangesOf(resp.holes),
          hasMore: resp.hasMore,
          maxSeq: Number(resp.maxSeq),
        };
        this.deliver(this.inbox.onSynced(convId, page, now));
      });
    }
  }

  // The delivered cursors that moved since the last flush, in one AckReq (batched: at most one
  // per ackIntervalMs), and saved to the store.
  private flushAcks(): void {
    this.lastAckMs = this.options.clock.now();
    const moved = this.inbox.takeMovedCursors();
    if (moved.size === 0) return;
    const cursors = [...moved].map(([convId, seq]) => ({ convId, seq: BigInt(seq) }));
    this.write(makeFrame({ case: "ackReq", value: { cursors } }));
    if (this.uid)
      this.withStore("cursors not saved", (store) => store.saveCursors(this.uid, moved));
  }

  // ---- app callbacks ----

  // Listener calls run as microtasks, in order, so that none runs inside the SDK's own code
  // (a callback may call the client) and an app's exception cannot break the client.
  private notify(call: (listener: ResolvedOptions["listener"]) => void): void {
    const listener = this.options.listener;
    queueMicrotask(() => {
      try {
        call(listener);
      } catch (error) {
        this.log(2, `a listener threw: ${String(error)}`);
      }
    });
  }

  private log(level: 0 | 1 | 2, line: string): void {
    this.options.log(level, line);
  }
}
