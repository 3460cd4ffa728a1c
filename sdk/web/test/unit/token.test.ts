import assert from "node:assert/strict";
import { test } from "node:test";
import { uidFromToken } from "../../src/token.js";
import { randomClientMsgId } from "../../src/random_id.js";
import { signToken } from "../support/token_signer.js";

test("the uid is read from a signed token's payload", () => {
  assert.equal(uidFromToken(signToken("alice-ü", "secret", "phone")), "alice-ü");
});

test("an opaque or malformed token names no uid", () => {
  for (const token of [
    "",
    "opaque",
    ".sig",
    "!!!.sig",
    `${btoa("[1]")}.sig`,
    `${btoa('{"uid":7}')}.x`,
  ]) {
    assert.equal(uidFromToken(token), "", token);
  }
});

test("client message ids are 32 hex digits and differ", () => {
  const a = randomClientMsgId();
  assert.match(a, /^[0-9a-f]{32}$/);
  assert.notEqual(a, randomClientMsgId());
});
