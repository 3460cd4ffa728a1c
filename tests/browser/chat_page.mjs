// What the test reads and does on a demo page, through its DOM only (as a person would).
const WAIT_MS = 20_000;
const POLL_MS = 100;

export class ChatPage {
  constructor(name, page) {
    this.name = name;
    this.page = page;
    this.console = [];
    page.on("console", (message) => this.console.push(`${message.type()}: ${message.text()}`));
    page.on("pageerror", (error) => this.console.push(`pageerror: ${error.message}`));
  }

  async waitForConnection(state) {
    await this.page.waitForSelector(`#connection[data-state="${state}"]`, { timeout: WAIT_MS });
  }

  async send(text) {
    await this.page.fill('#composer input[name="text"]', text);
    await this.page.press('#composer input[name="text"]', "Enter");
  }

  // The message list as shown, top to bottom.
  messages() {
    return this.page.$$eval("#messages li.message", (items) =>
      items.map((item) => ({
        text: item.querySelector(".body").textContent,
        seq: item.dataset.seq ? Number(item.dataset.seq) : null,
        sender: item.dataset.sender ?? "",
        mine: item.classList.contains("mine"),
        pending: item.classList.contains("pending"),
        status: item.querySelector(".status").textContent,
      })),
    );
  }

  // Resolves with the list once `holds(list)` is true; else fails with the last list seen.
  async waitForMessages(what, holds) {
    const deadline = Date.now() + WAIT_MS;
    let list = [];
    while (Date.now() < deadline) {
      list = await this.messages();
      if (holds(list)) return list;
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
    throw new Error(
      `${this.name}: ${what}: not within ${WAIT_MS} ms; the page shows:\n` +
        list
          .map(
            (m) =>
              `  ${m.seq ?? "-"} ${m.sender || "(me)"} ${JSON.stringify(m.text)} [${m.status}]`,
          )
          .join("\n"),
    );
  }

  // The unread count beside a staff console's conversation with `peer` (0 when none shows).
  async unreadOf(peer) {
    const badge = this.page.locator(`#conversations li[data-peer="${peer}"] .unread`);
    if ((await badge.count()) === 0 || (await badge.isHidden())) return 0;
    return Number(await badge.textContent());
  }

  async waitForUnread(peer, count) {
    const deadline = Date.now() + WAIT_MS;
    let seen = 0;
    while (Date.now() < deadline) {
      seen = await this.unreadOf(peer);
      if (seen === count) return;
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
    throw new Error(`${this.name}: unread of ${peer} is ${seen}, expected ${count}`);
  }

  async openConversation(peer) {
    await this.page.click(`#conversations li[data-peer="${peer}"]`, { timeout: WAIT_MS });
  }
}

// The texts of a list, top to bottom.
export function textsOf(list) {
  return list.map((message) => message.text);
}
