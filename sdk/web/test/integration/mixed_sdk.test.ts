import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Code } from "../../src/status.js";
import { ImServer } from "../support/im_server.js";
import { Imcli } from "../support/imcli.js";
import { LiveClient, contiguityError, singleChat, uniqueUid } from "../support/live_client.js";

let server: ImServer;
before(async () => {
  server = await ImServer.start();
});
after(async () => {
  await server?.stop();
});

const COUNT = 50;

// A web client (this SDK over WebSocket) and a C++ SDK client (imcli over the TCP port) in one
// conversation, sending at the same time: each sees every message of the other once, in order,
// with the seqs the other side was given.
test(
  "a web client and a C++ SDK client chat in one conversation",
  { timeout: 120_000 },
  async () => {
    const webUid = uniqueUid("web");
    const appUid = uniqueUid("app");
    const conv = singleChat(webUid, appUid);
    const web = new LiveClient(webUid, [server.url]);
    const app = Imcli.start(appUid, `127.0.0.1:${server.clientPort}`);
    try {
      await web.startAndWaitConnected();
      assert.ok(await app.waitForLine(/^\* connected/, 20_000), app.lines.join("\n"));
      app.type(`/open ${webUid}`);
      const ids: string[] = [];
      for (let i = 0; i < COUNT; ++i) {
        ids.push(web.client.sendTo(appUid, `from web ${i}`));
        app.type(`from app ${i}`);
      }

      const fromApp = () => web.messages(conv).filter((m) => m.sender === appUid);
      const fromWeb = () => app.messages.filter((m) => m.convId === conv && m.sender === webUid);
      assert.ok(
        await web.waitFor(() => fromApp().length >= COUNT, 30_000),
        `the web client has ${fromApp().length} of ${COUNT}`,
      );
      assert.ok(
        await app.waitFor(() => fromWeb().length >= COUNT, 30_000),
        `imcli printed ${fromWeb().length} of ${COUNT}`,
      );
      await new Promise((resolve) => setTimeout(resolve, 500)); // late duplicates would show

      const expected = (who: string) => Array.from({ length: COUNT }, (_, i) => `from ${who} ${i}`);
      assert.deepEqual(
        fromApp().map((m) => new TextDecoder().decode(m.body)),
        expected("app"),
      );
      assert.deepEqual(
        fromWeb().map((m) => m.body),
        expected("web"),
      );
      // The web client holds the whole conversation, its own sends included, in seq order.
      assert.equal(contiguityError(web.messages(conv), 1), "");
      const seqOf = new Map<string, number>();
      for (const id of ids) {
        const results = web.results.get(id) ?? [];
        assert.equal(results.length, 1, `one result for ${id}`);
        assert.equal(results[0]!.status.code, Code.OK);
        seqOf.set(results[0]!.clientMsgId, results[0]!.seq);
      }
      assert.deepEqual(
        fromWeb().map((m) => m.seq),
        ids.map((id) => seqOf.get(id)),
        "imcli saw the web client's messages at the seqs it was given",
      );
      assert.equal(await app.quit(), 0);
    } finally {
      await web.client.close();
      await app.quit(1000);
    }
  },
);
