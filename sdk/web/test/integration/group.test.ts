import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { MESSAGE_SYSTEM, type Message } from "../../src/types.js";
import { ImServer } from "../support/im_server.js";
import { LiveClient, contiguityError, singleChat, uniqueUid } from "../support/live_client.js";

// A group's system notice (docs/admin-api.md): type SYSTEM from @system, its body JSON naming the
// event.
function assertNotice(message: Message | undefined, event: string): void {
  assert.equal(message?.type, MESSAGE_SYSTEM);
  assert.equal(message?.sender, "@system");
  assert.equal(JSON.parse(new TextDecoder().decode(message?.body)).event, event);
}

let server: ImServer;
before(async () => {
  server = await ImServer.start();
});
after(async () => {
  await server?.stop();
});

test(
  "groups, conversations with unread counts, history and read receipts",
  { timeout: 120_000 },
  async () => {
    const alice = new LiveClient(uniqueUid("alice"), [server.url]);
    const bob = new LiveClient(uniqueUid("bob"), [server.url]);
    const carol = new LiveClient(uniqueUid("carol"), [server.url]);
    try {
      for (const side of [alice, bob, carol]) await side.startAndWaitConnected();
      const group = await alice.client.createGroup("team", [bob.uid]);
      assert.match(group.convId, /^g:/);
      // Seq 1 is the group's "group_created" notice: a SYSTEM message from @system.
      for (let i = 1; i <= 5; ++i) alice.client.send(group.convId, `early ${i}`);
      assert.ok(await bob.waitFor(() => bob.messages(group.convId).length === 6, 15_000));
      assertNotice(bob.messages(group.convId)[0], "group_created");

      // carol joins: she sees only what is sent after her join, starting with its notice.
      const joinedSeq = await carol.client.joinGroup(group.groupId);
      assert.equal(joinedSeq, 6);
      for (let i = 6; i <= 10; ++i) alice.client.send(group.convId, `late ${i}`);
      assert.ok(await bob.waitFor(() => bob.messages(group.convId).length === 12, 15_000));
      assert.ok(await carol.waitFor(() => carol.messages(group.convId).length === 6, 15_000));
      assert.equal(contiguityError(bob.messages(group.convId), 1), "");
      assert.equal(contiguityError(carol.messages(group.convId), 7), "");
      assertNotice(carol.messages(group.convId)[0], "member_joined");
      assert.ok(await alice.waitFor(() => alice.messages(group.convId).length === 12, 15_000));
      assert.equal(contiguityError(alice.messages(group.convId), 1), "", "the sender's own stream");

      const members = await carol.client.listGroupMembers(group.groupId);
      assert.deepEqual(members.map((m) => m.uid).sort(), [alice.uid, bob.uid, carol.uid].sort());
      assert.equal(members.find((m) => m.uid === alice.uid)?.role, 3, "the creator owns it");

      const [listed] = await bob.client.listConversations();
      assert.equal(listed?.convId, group.convId);
      assert.equal(listed?.unread, 12);
      assert.equal(listed?.lastMessage?.seq, 12);

      const page = await bob.client.loadHistory(group.convId, 9, 4);
      assert.deepEqual(
        page.messages.map((m) => m.seq),
        [5, 6, 7, 8],
      );

      assert.equal(await bob.client.markRead(group.convId, 12), 12);
      assert.equal((await bob.client.listConversations())[0]?.unread, 0);
      // The sender's devices hear that group members read its messages (coalesced pushes).
      assert.ok(
        await alice.waitFor(
          () =>
            alice.receipts.some(
              (r) => r.convId === group.convId && r.reader === bob.uid && r.readSeq === 12,
            ),
          15_000,
        ),
        JSON.stringify(alice.receipts),
      );

      // In a single chat the reader's peer gets a read receipt.
      const direct = singleChat(alice.uid, carol.uid);
      alice.client.sendTo(carol.uid, "are you there?");
      assert.ok(await carol.waitFor(() => carol.messages(direct).length === 1, 15_000));
      await carol.client.markRead(direct, 1);
      assert.ok(
        await alice.waitFor(
          () =>
            alice.receipts.some(
              (r) => r.convId === direct && r.reader === carol.uid && r.readSeq === 1,
            ),
          15_000,
        ),
      );

      // carol leaves: her later sends to the group are refused for good, with one result.
      await carol.client.leaveGroup(group.groupId);
      const refused = carol.client.send(group.convId, "still in?");
      assert.ok(await carol.waitFor(() => carol.results.has(refused), 15_000));
      assert.notEqual(carol.results.get(refused)![0]!.status.code, 0);
      const after = await alice.client.listGroupMembers(group.groupId);
      assert.deepEqual(after.map((m) => m.uid).sort(), [alice.uid, bob.uid].sort());
    } finally {
      for (const side of [alice, bob, carol]) await side.client.close();
    }
  },
);
