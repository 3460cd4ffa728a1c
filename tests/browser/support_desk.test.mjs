// The support-desk demo (sdk/web/demo) in a real browser: a user (user.html) and the staff
// console (staff.html), each in its own browser context (own storage, own network), against a
// fresh im-server. Checks what a person would see: unread counts, replies both ways, read
// receipts, history after a reload, and, across the network going away and back while both
// send, every message exactly once and in the same order on both sides.
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { chromium } from "playwright-core";
import { ChatPage, textsOf } from "./chat_page.mjs";
import { DeskServers, REPO } from "./desk_servers.mjs";

const ARTIFACTS = process.env.IM_BROWSER_ARTIFACTS ?? join(REPO, "build/test/browser-artifacts");
const CHROMIUM = process.env.IM_CHROMIUM ?? "/usr/bin/chromium";
const USER = "alice";
const DESK = "support";

// Every message of the conversation by the end of the offline step.
const SO_FAR = [
  "Hi! My order #1042 has not arrived.",
  "It was due on Monday.",
  "Sorry about that! Let me check.",
  "Are you there?",
  "Hello?",
  "I will wait.",
  "We found it: it ships today.",
  "The tracking number follows by email.",
];

const servers = new DeskServers();
let browser = null;
let user = null; // ChatPage of user.html
let staff = null; // ChatPage of staff.html
let otherStaff = null; // a second staff console: the desk's inbox is shared
let userContext = null;
let staffContext = null;
let failed = false;

// Each step builds on the one before: after a failure the rest are skipped, not piled on.
function step(name, body) {
  it(name, async (t) => {
    if (failed) return t.skip("an earlier step failed");
    try {
      await body();
    } catch (error) {
      failed = true;
      throw error;
    }
  });
}

function assertSameConversation(userList, staffList, expectedTexts) {
  assert.deepEqual(textsOf(staffList), textsOf(userList), "both sides show one order");
  assert.deepEqual(
    [...textsOf(userList)].sort(),
    [...expectedTexts].sort(),
    "every message exactly once",
  );
  for (const list of [userList, staffList]) {
    assert.deepEqual(
      list.map((m) => m.seq),
      list.map((_, i) => i + 1),
      "seqs 1..n, none pending",
    );
  }
}

function afterOneAnother(texts, earlier, later) {
  return texts.indexOf(earlier) < texts.indexOf(later);
}

describe("support desk in chromium", () => {
  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    await servers.start();
    browser = await chromium.launch({ executablePath: CHROMIUM });
    userContext = await browser.newContext({ viewport: { width: 720, height: 640 } });
    staffContext = await browser.newContext({ viewport: { width: 1000, height: 640 } });
    user = new ChatPage("user", await userContext.newPage());
    staff = new ChatPage("staff", await staffContext.newPage());
    const otherContext = await browser.newContext({ viewport: { width: 1000, height: 640 } });
    otherStaff = new ChatPage("other-staff", await otherContext.newPage());
  });

  after(async () => {
    for (const page of [user, staff, otherStaff]) {
      if (!page) continue;
      await page.page
        .screenshot({ path: join(ARTIFACTS, `${page.name}.png`), fullPage: true })
        .catch((error) => page.console.push(`screenshot failed: ${error.message}`));
      writeFileSync(join(ARTIFACTS, `${page.name}-console.log`), page.console.join("\n") + "\n");
    }
    await browser?.close();
    if (servers.server) writeFileSync(join(ARTIFACTS, "im-server.log"), servers.server.log);
    if (servers.web) writeFileSync(join(ARTIFACTS, "dev-web.log"), servers.web.log);
    await servers.stop();
    console.log(`screenshots and logs: ${ARTIFACTS}`);
  });

  step("a user's questions reach the staff console with an unread count", async () => {
    for (const desk of [staff, otherStaff]) {
      await desk.page.goto(`${servers.webUrl}staff.html`);
      await desk.waitForConnection("connected");
    }
    await user.page.goto(`${servers.webUrl}user.html`);
    await user.page.fill("#uid", USER);
    await user.page.click('#signin button[type="submit"]');
    await user.waitForConnection("connected");

    await user.send("Hi! My order #1042 has not arrived.");
    await user.waitForMessages("the first question sent", (l) => l.length === 1 && l[0].seq === 1);
    await staff.waitForUnread(USER, 1);
    await user.send("It was due on Monday.");
    await staff.waitForUnread(USER, 2);
    await otherStaff.waitForUnread(USER, 2);
    await staff.page.screenshot({ path: join(ARTIFACTS, "staff-unread.png") });
  });

  step("staff open the chat and reply; read receipts show on both sides", async () => {
    await staff.openConversation(USER);
    await staff.waitForMessages("the questions", (l) => l.length === 2);
    await staff.waitForUnread(USER, 0);
    await otherStaff.waitForUnread(USER, 0); // read by a colleague: read for the desk
    await user.waitForMessages("both questions read", (l) => l.every((m) => m.status === "Read"));

    await staff.send("Sorry about that! Let me check.");
    const userList = await user.waitForMessages("the reply", (l) => l.length === 3);
    assert.equal(userList[2].sender, DESK);
    assert.equal(userList[2].mine, false);
    await staff.waitForMessages("the reply read", (l) => l[2]?.status === "Read");
  });

  step("a reload shows the history once, in order, with its receipts", async () => {
    const expected = [
      "Hi! My order #1042 has not arrived.",
      "It was due on Monday.",
      "Sorry about that! Let me check.",
    ];
    await user.page.reload();
    await user.waitForConnection("connected");
    const userList = await user.waitForMessages("the history", (l) => l.length >= 3);
    assert.deepEqual(textsOf(userList), expected);
    assert.deepEqual(
      userList.map((m) => m.status),
      ["Read", "Read", ""],
    );

    await staff.page.reload();
    await staff.waitForConnection("connected");
    await staff.openConversation(USER);
    const staffList = await staff.waitForMessages("the history", (l) => l.length >= 3);
    assert.deepEqual(textsOf(staffList), expected);
    assert.equal(await staff.unreadOf(USER), 0);
  });

  step("offline and back while both send: nothing lost, nothing doubled", async () => {
    await user.send("Are you there?"); // may be on the wire as the network goes
    await userContext.setOffline(true);
    await user.waitForConnection("offline");
    await user.send("Hello?");
    await user.send("I will wait.");
    await user.waitForMessages(
      "sends queued offline",
      (l) => l.filter((m) => m.pending).length >= 2,
    );

    await staff.send("We found it: it ships today.");
    await staff.waitForMessages("the staff reply sent", (l) => l.at(-1)?.seq !== null);
    await staffContext.setOffline(true);
    await staff.waitForConnection("offline");
    await staff.send("The tracking number follows by email.");
    await staff.waitForMessages("the staff send queued", (l) => l.at(-1)?.pending === true);

    await userContext.setOffline(false);
    await staffContext.setOffline(false);
    await user.waitForConnection("connected");
    await staff.waitForConnection("connected");
    const expected = SO_FAR;
    const settled = (l) => l.length >= expected.length && l.every((m) => m.seq !== null);
    const userList = await user.waitForMessages("every message", settled);
    const staffList = await staff.waitForMessages("every message", settled);
    assertSameConversation(userList, staffList, expected);
    const texts = textsOf(userList);
    assert.ok(afterOneAnother(texts, "Are you there?", "Hello?"), "the user's sends in order");
    assert.ok(afterOneAnother(texts, "Hello?", "I will wait."), "the user's sends in order");
    assert.ok(
      afterOneAnother(
        texts,
        "We found it: it ships today.",
        "The tracking number follows by email.",
      ),
      "the staff's sends in order",
    );
  });

  step("a send made while the gateway is out of reach survives a reload", async () => {
    let gatewayReachable = false;
    await userContext.routeWebSocket(/.*/, (socket) =>
      gatewayReachable ? socket.connectToServer() : socket.close(),
    );
    await user.page.reload(); // the new page's connections are refused
    await user.waitForConnection("connecting");
    await user.send("Sent while the chat was down.");
    await user.waitForMessages("the send queued", (l) => l.at(-1)?.pending === true);
    await user.page.reload(); // the send is in IndexedDB's outbox only
    await user.waitForConnection("connecting");
    gatewayReachable = true;
    await user.waitForConnection("connected");
    const expected = [...SO_FAR, "Sent while the chat was down."];
    const settled = (l) => l.length >= expected.length && l.every((m) => m.seq !== null);
    const userList = await user.waitForMessages("the queued send", settled);
    const staffList = await staff.waitForMessages("the queued send", settled);
    assertSameConversation(userList, staffList, expected);
  });

  step("read receipts after the reconnect", async () => {
    const allRead = (mine) => (l) =>
      l.filter((m) => m.mine === mine).every((m) => m.status === "Read");
    await user.waitForMessages("the user's messages read", allRead(true));
    await staff.waitForMessages("the staff's messages read", allRead(true));
    assert.equal(await staff.unreadOf(USER), 0);
  });
});
