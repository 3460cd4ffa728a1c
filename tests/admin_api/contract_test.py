"""The admin API's contract against a live im-server (tests/admin_api/README.md).

First what every operation must do, read from docs/openapi/admin-api.yaml so that a new operation
is covered without a change here: refuse a request without the admin key, and, when it takes a
body, refuse a body that is not the JSON object its schema describes. Then what an app server
relies on, feature by feature. Every response of every test is checked against the spec
(api_client.AdminClient.call).
"""

import base64
import json
import random
import secrets
import time

import pytest
import requests

import api_spec

# Path parameters of the generic checks: the group exists (the sample_group fixture), so that a
# request getting past its checks would be carried out rather than answered NOT_FOUND.
SAMPLE_PATH = {"uid": "contract-owner", "group_id": "contract-group", "conv_id": "g:contract-group"}
SAMPLE_STRING = "contract-sample"
# A body the server would accept, where the schema's minimal instance is not one: SendRequest
# needs exactly one recipient, which its schema does not say.
SAMPLE_BODIES = {"sendMessage": {"id": "contract-msg", "to_uid": "contract-peer", "body": "hi"}}
OVER_LIMIT_BYTES = 2 << 20  # the server's default admin_api.max_body_bytes is 1 MiB
CLOCK_SLACK_MS = 5_000
STORED = ("conv_id", "seq", "msg_id")  # what a repeated send answers as the first did
MAX_PAGES = 1_000

OPERATIONS = api_spec.operations()
BODY_OPERATIONS = [op for op in OPERATIONS if op.request_body]


def operation_id(op):
    return op.operation_id


def sample_path(op):
    return {name: SAMPLE_PATH.get(name, SAMPLE_STRING) for name in op.path_parameters}


def sample_body(op):
    body = SAMPLE_BODIES.get(op.operation_id) or api_spec.minimal_instance(
        op.request_schema_pointer, SAMPLE_STRING)
    problems = api_spec.violations(op.request_schema_pointer, body)
    assert not problems, f"{op}: the sample body {body} does not fit its schema {problems}; " \
                         "give the operation one in SAMPLE_BODIES"
    return body


def wrong_authorizations(key):
    """Authorization headers that must be refused, by name (None: no header at all)."""
    return {
        "none": None,
        "another-key": f"Bearer {secrets.token_urlsafe(32)}",
        "key-prefix": f"Bearer {key[:-1]}",
        "key-and-more": f"Bearer {key}x",
        "empty-bearer": "Bearer",
        "basic": "Basic " + base64.b64encode(f"admin:{key}".encode()).decode(),
        "key-without-scheme": key,
    }


@pytest.fixture(scope="session")
def sample_group(api):
    api.ok("createGroup", status=201, json={
        "group_id": SAMPLE_PATH["group_id"], "name": "contract", "owner": SAMPLE_PATH["uid"],
        "members": [SAMPLE_STRING]})


@pytest.mark.parametrize("case", list(wrong_authorizations("k" * 32)))
@pytest.mark.parametrize("op", OPERATIONS, ids=operation_id)
def test_refuses_a_request_without_the_admin_key(api, sample_group, op, case):
    body = {"json": sample_body(op)} if op.request_body else {}
    authorization = wrong_authorizations(api.admin_key)[case]
    api.error(op.operation_id, sample_path(op), authorization=authorization, status=401,
              code="UNAUTHENTICATED", **body)


def test_a_refused_request_leaves_its_connection_usable(api):
    """A client keeps its connection open between calls (requests, OkHttp, Go's http do): a
    request refused before its body was read must not leave that body to be read as the next
    request. Twenty rounds on one connection, since whether the body has arrived when the refusal
    is sent is a matter of timing."""
    for _ in range(20):
        api.error("queryUserStates", authorization="Bearer wrong-key", status=401,
                  code="UNAUTHENTICATED", json={"uids": ["alice"]})
        assert api.ok("getUserState", {"uid": "alice"})["uid"] == "alice"


MALFORMED_JSON = {
    "truncated": b'{"uids": [',
    "trailing-garbage": b'{} x',
    "not-utf8": b'{"name": "\xff\xfe"}',
    "single-quotes": b"{'name': 'x'}",
    "deeply-nested": b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
}


def send_raw(api, op, data):
    return api.call(op.operation_id, sample_path(op), data=data,
                    headers={"Content-Type": "application/json"})


def expect_invalid_argument(api, op, data):
    response = send_raw(api, op, data)
    code = response.json().get("error", {}).get("code")
    assert (response.status_code, code) == (400, "INVALID_ARGUMENT"), \
        f"{op}: expected 400 INVALID_ARGUMENT{api_spec.exchange(response)}"


@pytest.mark.parametrize("case", list(MALFORMED_JSON))
@pytest.mark.parametrize("op", BODY_OPERATIONS, ids=operation_id)
def test_refuses_malformed_json(api, sample_group, op, case):
    expect_invalid_argument(api, op, MALFORMED_JSON[case])


@pytest.mark.parametrize("op", BODY_OPERATIONS, ids=operation_id)
def test_refuses_an_array_for_an_object(api, sample_group, op):
    expect_invalid_argument(api, op, json.dumps([sample_body(op)]).encode())


@pytest.mark.parametrize("op", BODY_OPERATIONS, ids=operation_id)
def test_refuses_an_unknown_field(api, sample_group, op):
    expect_invalid_argument(api, op, json.dumps({**sample_body(op), "unknown_field": 1}).encode())


@pytest.mark.parametrize("op", BODY_OPERATIONS, ids=operation_id)
def test_empty_body_is_refused_only_when_required(api, sample_group, op):
    if op.request_body.get("required", False):
        expect_invalid_argument(api, op, b"")
    else:
        response = send_raw(api, op, b"")
        assert 200 <= response.status_code < 300, \
            f"{op}: an optional body left out{api_spec.exchange(response)}"


@pytest.mark.parametrize("op", BODY_OPERATIONS, ids=operation_id)
def test_refuses_a_body_over_the_limit(api, sample_group, op):
    padding = b"x" * OVER_LIMIT_BYTES
    try:
        response = send_raw(api, op, b'{"padding": "' + padding + b'"}')
    except requests.ConnectionError as error:
        pytest.fail(f"{op}: the server closed the connection on a {OVER_LIMIT_BYTES}-byte body "
                    f"instead of answering 413 BODY_TOO_LARGE ({error})")
    code = response.json().get("error", {}).get("code")
    assert (response.status_code, code) == (413, "BODY_TOO_LARGE"), \
        f"{op}: expected 413 BODY_TOO_LARGE{api_spec.exchange(response)}"


# What an app server relies on.

def unique(prefix):
    return f"{prefix}-{secrets.token_hex(4)}"


def now_ms():
    return int(time.time() * 1000)


def create_group(api, owner, members, **fields):
    body = {"name": "team", "owner": owner, "members": members, **fields}
    return api.ok("createGroup", status=201, json=body)


def all_members(api, group_id, limit):
    """Every member, walking the pages of `limit`."""
    members, params = [], {"limit": limit}
    for _ in range(MAX_PAGES):
        page = api.ok("listGroupMembers", {"group_id": group_id}, params=params)
        members += page["members"]
        if not page["next_page_token"]:
            return members
        params["page_token"] = page["next_page_token"]
    pytest.fail(f"listGroupMembers of {group_id} gave more than {MAX_PAGES} pages")


def roles(members):
    return {m["uid"]: m["role"] for m in members}


def history(api, conv_id):
    """Every message of a conversation, walking the pages of 200."""
    messages, after = [], 0
    for _ in range(MAX_PAGES):
        params = {"after_seq": after, "limit": 200}
        page = api.ok("readHistory", {"conv_id": conv_id}, params=params)
        assert page["conv_id"] == conv_id
        messages += page["messages"]
        if not page["has_more"]:
            return messages
        assert page["messages"], f"readHistory of {conv_id}: has_more with an empty page"
        after = page["messages"][-1]["seq"]
    pytest.fail(f"readHistory of {conv_id} gave more than {MAX_PAGES} pages")


def body_of(message):
    return base64.b64decode(message["body_base64"])


def send(api, **fields):
    return api.ok("sendMessage", json=fields)


def user_state(api, uid):
    return api.ok("getUserState", {"uid": uid})


def test_create_group_with_owner_and_members(api):
    group_id = unique("team")
    created = create_group(api, "ann", ["bob", "cid"], group_id=group_id)
    assert created == {"group_id": group_id, "conv_id": f"g:{group_id}"}
    group = api.ok("getGroup", {"group_id": group_id})
    assert (group["group_id"], group["name"], group["owner"]) == (group_id, "team", "ann")
    assert (group["member_count"], group["muted_until_ms"]) == (3, 0)
    assert abs(group["created_ms"] - now_ms()) < CLOCK_SLACK_MS


def test_create_group_picks_an_id_when_given_none(api):
    created = create_group(api, "ann", [])
    assert created["conv_id"] == f"g:{created['group_id']}"
    assert api.ok("getGroup", {"group_id": created["group_id"]})["member_count"] == 1


def test_group_id_taken(api):
    group_id = create_group(api, "ann", [], group_id=unique("taken"))["group_id"]
    api.error("createGroup", status=409, code="ALREADY_EXISTS",
              json={"group_id": group_id, "name": "again", "owner": "bob"})


def test_unknown_group_is_not_found(api):
    path = {"group_id": unique("nosuch")}
    api.error("getGroup", path, status=404, code="NOT_FOUND")
    api.error("listGroupMembers", path, status=404, code="NOT_FOUND")
    api.error("addGroupMembers", path, status=404, code="NOT_FOUND", json={"uids": ["ann"]})
    api.error("dismissGroup", path, status=404, code="NOT_FOUND")


def test_members_one_per_page_in_uid_order(api):
    members = ["m-carol", "m-alice", "m-bob"]
    group_id = create_group(api, "owner-zed", members)["group_id"]
    listed = all_members(api, group_id, limit=1)
    assert [m["uid"] for m in listed] == sorted(["owner-zed", *members])
    assert roles(listed) == {"owner-zed": "OWNER", **{uid: "MEMBER" for uid in members}}


def test_add_two_thousand_members_at_once(api):
    group_id = create_group(api, "bulk-owner", [])["group_id"]
    added = [f"bulk-{i:04d}" for i in range(2_000)]
    random.Random(7).shuffle(added)
    path = {"group_id": group_id}
    joined_seq = api.ok("addGroupMembers", path, json={"uids": added})["joined_seq"]
    listed = all_members(api, group_id, limit=500)
    assert [m["uid"] for m in listed] == sorted(["bulk-owner", *added])
    assert {m["joined_seq"] for m in listed if m["uid"] != "bulk-owner"} == {joined_seq}
    assert api.ok("getGroup", path)["member_count"] == 2_001
    # Those already in keep their role.
    api.ok("addGroupMembers", path, json={"uids": ["bulk-owner", added[0]]})
    assert roles(all_members(api, group_id, limit=500))["bulk-owner"] == "OWNER"
    assert api.ok("getGroup", path)["member_count"] == 2_001


def test_remove_members(api):
    group_id = create_group(api, "rm-owner", ["rm-a", "rm-b", "rm-c"])["group_id"]
    path = {"group_id": group_id}
    assert api.ok("removeGroupMembers", path, json={"uids": ["rm-a", "rm-c", "rm-never"]}) == \
        {"removed": 2}
    assert [m["uid"] for m in all_members(api, group_id, limit=100)] == ["rm-b", "rm-owner"]
    assert api.ok("getGroup", path)["member_count"] == 2
    api.error("removeGroupMembers", path, status=409, code="FAILED_PRECONDITION",
              json={"uids": ["rm-owner"]})


def test_make_admin_then_hand_over(api):
    group_id = create_group(api, "old-owner", ["heir", "other"])["group_id"]
    heir = {"group_id": group_id, "uid": "heir"}
    assert api.ok("setGroupRole", heir, json={"role": "ADMIN"}) == {"role": "ADMIN"}
    assert roles(all_members(api, group_id, limit=100))["heir"] == "ADMIN"
    assert api.ok("setGroupRole", heir, json={"role": "OWNER"}) == {"role": "OWNER"}
    assert api.ok("getGroup", {"group_id": group_id})["owner"] == "heir"
    assert roles(all_members(api, group_id, limit=100)) == {
        "heir": "OWNER", "old-owner": "ADMIN", "other": "MEMBER"}


def test_new_group_history_starts_with_its_created_notice(api):
    group_id = create_group(api, "ann", ["bob"])["group_id"]
    first, *rest = history(api, f"g:{group_id}")
    assert (first["sender"], first["type"]) == ("@system", "SYSTEM"), first
    assert json.loads(body_of(first))["event"] == "group_created", first
    assert all(m["type"] != "SYSTEM" or json.loads(body_of(m)).get("event") != "group_created"
               for m in rest), rest


def test_system_and_member_messages_in_seq_order(api):
    group_id = create_group(api, "ann", ["bob"])["group_id"]
    conv_id = f"g:{group_id}"
    notice = {"id": unique("notice"), "group_id": group_id, "body": "welcome"}
    chat = {"id": unique("chat"), "from": "bob", "group_id": group_id, "body": "hello"}
    sent = [send(api, **notice), send(api, **chat)]
    assert [s["conv_id"] for s in sent] == [conv_id, conv_id]
    assert sent[0]["seq"] < sent[1]["seq"]

    messages = history(api, conv_id)
    assert [m["seq"] for m in messages] == sorted({m["seq"] for m in messages})
    last_two = messages[-2:]
    assert [(m["seq"], m["msg_id"]) for m in last_two] == [(s["seq"], s["msg_id"]) for s in sent]
    assert [(m["sender"], m["type"], body_of(m)) for m in last_two] == [
        ("@system", "TEXT", b"welcome"), ("bob", "TEXT", b"hello")]

    # The same id again answers the stored message, and stores nothing more.
    again = send(api, **chat)
    assert [again[k] for k in STORED] == [sent[1][k] for k in STORED]
    assert len(history(api, conv_id)) == len(messages)


def test_direct_message_between_users(api):
    sender, peer = unique("zz-sender"), unique("aa-peer")  # the conversation id orders them
    sent = send(api, **{"id": unique("dm"), "from": sender, "to_uid": peer, "body": "hi"})
    assert sent["conv_id"] == f"s:{peer}:{sender}"
    last = history(api, sent["conv_id"])[-1]
    assert (last["seq"], last["sender"], body_of(last)) == (sent["seq"], sender, b"hi")


def test_states_of_a_thousand_users_in_request_order(api):
    uids = [unique(f"state-{i}") for i in range(1_000)]
    users = api.ok("queryUserStates", json={"uids": uids})["users"]
    assert [u["uid"] for u in users] == uids
    assert all((u["online"], u["sessions"]) == (False, []) for u in users)


def test_kick_a_user_without_sessions(api):
    assert api.ok("kickUser", {"uid": unique("kicked")}) == {"kicked": 0}


def test_mute_and_unmute_a_user(api):
    uid = unique("noisy")
    path = {"uid": uid}
    before = now_ms()
    until = api.ok("muteUser", path, json={"duration_sec": 3_600})["muted_until_ms"]
    assert before + 3_600_000 - CLOCK_SLACK_MS <= until <= now_ms() + 3_600_000 + CLOCK_SLACK_MS
    assert user_state(api, uid)["muted_until_ms"] == until
    api.error("sendMessage", status=403, code="MUTED",
              json={"id": unique("muted"), "from": uid, "to_uid": "anyone", "body": "hi"})
    assert api.ok("unmuteUser", path) == {"lifted": True}
    assert user_state(api, uid)["muted_until_ms"] == 0
    assert api.ok("unmuteUser", path) == {"lifted": False}


def test_mute_a_group_for_its_members(api):
    group_id = create_group(api, "boss", ["crew"])["group_id"]
    path = {"group_id": group_id}
    until = api.ok("muteGroup", path, json={"duration_sec": 60})["muted_until_ms"]
    assert api.ok("getGroup", path)["muted_until_ms"] == until
    api.error("sendMessage", status=403, code="MUTED",
              json={"id": unique("hush"), "from": "crew", "group_id": group_id, "body": "hi"})
    send(api, **{"id": unique("boss"), "from": "boss", "group_id": group_id, "body": "quiet"})
    assert api.ok("unmuteGroup", path) == {"lifted": True}
    assert api.ok("unmuteGroup", path) == {"lifted": False}
    assert api.ok("getGroup", path)["muted_until_ms"] == 0


def test_revoke_tokens(api):
    uid = unique("leaked")
    before = now_ms()
    revoked = api.ok("revokeTokens", {"uid": uid})
    assert (revoked["uid"], revoked["kicked"]) == (uid, 0)
    assert before - CLOCK_SLACK_MS <= revoked["issued_before_ms"] <= now_ms() + CLOCK_SLACK_MS
    assert user_state(api, uid)["tokens_revoked_before_ms"] == revoked["issued_before_ms"]
    later = revoked["issued_before_ms"] + 1_000
    assert api.ok("revokeTokens", {"uid": uid}, json={"issued_before_ms": later}) == \
        {"uid": uid, "issued_before_ms": later, "kicked": 0}
    assert user_state(api, uid)["tokens_revoked_before_ms"] == later


def test_dismiss_group(api):
    group_id = create_group(api, "ann", ["bob", "cid"])["group_id"]
    path = {"group_id": group_id}
    assert api.ok("dismissGroup", path) == {"group_id": group_id, "members": 3}
    api.error("getGroup", path, status=404, code="NOT_FOUND")
    api.error("dismissGroup", path, status=404, code="NOT_FOUND")
    # Its history stays readable, ending with the notice its members saw.
    last = history(api, f"g:{group_id}")[-1]
    assert (last["sender"], last["type"]) == ("@system", "SYSTEM"), last
