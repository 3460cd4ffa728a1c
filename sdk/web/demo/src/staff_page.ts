import type { ImClient, Message } from "@im-cluster/web-sdk";
import { bindComposer, enableComposer } from "./composer.js";
import { showConnection } from "./connection_badge.js";
import { ConversationListView } from "./conversation_list_view.js";
import { ConversationView } from "./conversation_view.js";
import { byId } from "./dom.js";
import { DESK_UID } from "./desk.js";
import { ReadMarker } from "./read_marker.js";
import { startSession } from "./session.js";

const HISTORY_PAGE = 50;

// The staff console: a device of the desk's uid. Every chat a user opened with the desk, with
// unread counts; the open one is shown, replied to and marked read.
class StaffConsole {
  private client!: ImClient; // set in start(), before any listener call
  private readonly inbox: ConversationListView;
  private readonly views = new Map<string, ConversationView>(); // chats opened on this page
  private readonly markers = new Map<string, ReadMarker>();
  private openConvId = "";
  private readonly messageList = byId<HTMLOListElement>("messages");
  private readonly composer = byId<HTMLFormElement>("composer");

  constructor() {
    this.inbox = new ConversationListView(byId("conversations"), DESK_UID, (convId) =>
      this.open(convId),
    );
  }

  async start(): Promise<void> {
    this.client = await startSession(
      DESK_UID,
      "staff",
      {
        onStateChanged: (state) => {
          if (state === "connected") this.refresh().catch(console.warn);
        },
        onMessages: (convId, messages) => this.onMessages(convId, messages),
        onSendResult: (result) => {
          for (const view of this.views.values()) if (view.onSendResult(result)) break;
          this.show();
        },
        onReadReceipt: ({ convId, reader, readSeq }) => {
          if (reader === DESK_UID) {
            // Another staff member read it.
            this.inbox.noteRead(
              convId,
              readSeq,
              this.views.get(convId)?.countFromOthersAfter(readSeq),
            );
            this.markers.get(convId)?.noteRead(readSeq);
          } else {
            this.inbox.notePeerRead(convId, readSeq);
            this.views.get(convId)?.setPeerRead(readSeq);
          }
          this.show();
        },
      },
      (state) => showConnection(byId("connection"), state),
    );
    document.addEventListener("visibilitychange", () => this.show());
    bindComposer(this.composer, (text) => this.reply(text));
    this.show();
  }

  // After every login: the server's list and counts, and the open chat's last page.
  private async refresh(): Promise<void> {
    this.inbox.replaceAll(await this.client.listConversations());
    this.show();
    if (this.openConvId) await this.loadRecent(this.openConvId);
  }

  private onMessages(convId: string, messages: Message[]): void {
    this.inbox.noteMessages(convId, messages);
    this.views.get(convId)?.addMessages(messages);
    this.show();
  }

  private open(convId: string): void {
    const entry = this.inbox.get(convId);
    if (!entry) return;
    this.openConvId = convId;
    byId("peer").textContent = entry.peer;
    enableComposer(this.composer, true);
    if (!this.views.has(convId)) {
      const view = new ConversationView(convId, DESK_UID);
      this.views.set(convId, view);
      const marker = new ReadMarker(this.client, convId, (readSeq) => {
        this.inbox.noteRead(convId, readSeq, view.countFromOthersAfter(readSeq));
        this.show();
      });
      this.markers.set(convId, marker);
    }
    this.show();
    this.loadRecent(convId).catch(console.warn);
  }

  private async loadRecent(convId: string): Promise<void> {
    const entry = this.inbox.get(convId);
    const view = this.views.get(convId);
    if (!entry || !view) return;
    view.setPeerRead(entry.peerReadSeq);
    this.markers.get(convId)?.noteRead(entry.readSeq);
    const page = await this.client.loadHistory(convId, entry.maxSeq + 1, HISTORY_PAGE);
    view.addMessages(page.messages);
    this.show();
  }

  private reply(text: string): void {
    const view = this.views.get(this.openConvId);
    if (!view) return;
    view.addPending(this.client.send(this.openConvId, text), text);
    this.show();
  }

  private show(): void {
    this.inbox.render(this.openConvId);
    const view = this.views.get(this.openConvId);
    if (!view) return;
    view.render(this.messageList);
    this.markers.get(this.openConvId)?.markShown(view.newestFromOthers);
  }
}

new StaffConsole().start().catch((error) => {
  byId("fatal").textContent = `Could not start: ${String(error)}`;
});
