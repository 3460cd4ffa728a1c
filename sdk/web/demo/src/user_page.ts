import type { ImClient } from "@im-cluster/web-sdk";
import { bindComposer, enableComposer } from "./composer.js";
import { showConnection } from "./connection_badge.js";
import { ConversationView } from "./conversation_view.js";
import { byId } from "./dom.js";
import { DESK_UID, singleChatId } from "./desk.js";
import { ReadMarker } from "./read_marker.js";
import { startSession } from "./session.js";

const SIGNED_IN_KEY = "im-demo-user";
const HISTORY_PAGE = 50;
const UID_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;

// The app user's side: one chat with the support desk.
async function openChat(uid: string): Promise<void> {
  byId("signin").hidden = true;
  byId("chat").hidden = false;
  byId("whoami").textContent = uid;
  const list = byId<HTMLOListElement>("messages");
  const composer = byId<HTMLFormElement>("composer");
  const convId = singleChatId(uid, DESK_UID);
  const view = new ConversationView(convId, uid);
  let client!: ImClient; // set before it can connect: the listener runs after a login
  let marker: ReadMarker | undefined;
  const show = () => {
    view.render(list);
    marker?.markShown(view.newestFromOthers);
  };
  // After every login: the read cursors and the last page of history (the SDK delivers only
  // what is newer than this device's cursor; the view drops the overlap by seq).
  const loadRecent = async () => {
    const conversation = (await client.listConversations()).find((c) => c.convId === convId);
    if (!conversation) return;
    view.setPeerRead(conversation.peerReadSeq);
    marker?.noteRead(conversation.readSeq);
    const page = await client.loadHistory(convId, conversation.maxSeq + 1, HISTORY_PAGE);
    view.addMessages(page.messages);
    show();
  };
  client = await startSession(
    uid,
    "user",
    {
      onStateChanged: (state) => {
        if (state === "connected") loadRecent().catch(console.warn);
      },
      onMessages: (_convId, messages) => {
        view.addMessages(messages);
        show();
      },
      onSendResult: (result) => {
        if (view.onSendResult(result)) show();
      },
      onReadReceipt: (receipt) => {
        if (receipt.convId !== convId || receipt.reader === uid) return;
        view.setPeerRead(receipt.readSeq);
        show();
      },
    },
    (state) => showConnection(byId("connection"), state),
  );
  marker = new ReadMarker(client, convId);
  document.addEventListener("visibilitychange", show);
  bindComposer(composer, (text) => {
    view.addPending(client.sendTo(DESK_UID, text), text);
    show();
  });
  enableComposer(composer, true);
  const signOut = byId("signout");
  signOut.hidden = false;
  signOut.addEventListener("click", async () => {
    await client.close();
    localStorage.removeItem(SIGNED_IN_KEY);
    location.reload();
  });
}

function askForUid(): void {
  const form = byId<HTMLFormElement>("signin");
  const input = form.elements.namedItem("uid") as HTMLInputElement;
  const error = byId("signin-error");
  form.hidden = false;
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const uid = input.value.trim();
    if (!UID_PATTERN.test(uid) || uid === DESK_UID) {
      error.textContent = `Pick a name of letters, digits, "_", "." or "-" (not "${DESK_UID}").`;
      return;
    }
    localStorage.setItem(SIGNED_IN_KEY, uid);
    openChat(uid).catch(fail);
  });
}

function fail(error: unknown): void {
  byId("fatal").textContent = `Could not start: ${String(error)}`;
}

const signedIn = localStorage.getItem(SIGNED_IN_KEY);
if (signedIn) openChat(signedIn).catch(fail);
else askForUid();
