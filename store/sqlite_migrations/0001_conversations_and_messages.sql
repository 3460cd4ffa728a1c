-- Messages, conversations and per-user cursors: the tables of store/migrations/0001 for SQLite.
-- A migration runs in one transaction with its ledger row (SQLite's DDL is transactional), so it
-- never runs half or twice, and its statements need no IF NOT EXISTS.
--
-- Tables are STRICT, so a value of the wrong type is refused rather than stored. Identifiers and
-- bodies are BLOBs, compared byte for byte as MySQL's binary columns are; bound as BLOBs always
-- (SqliteStatement::Bytes), since a TEXT value never equals a BLOB. Integers are SQLite's signed
-- 64-bit ones: seqs and msg_ids above INT64_MAX are refused. Lengths are those
-- store/message_rules.h checks.

-- One row per message. client_msg_id is NULL when the sender gave none: NULLs never collide in
-- a UNIQUE constraint, so only messages with one are deduplicated. A rowid table, not WITHOUT
-- ROWID: bodies run to megabytes, and the key index stays small beside them.
CREATE TABLE messages (
  conv_id BLOB NOT NULL,
  seq INTEGER NOT NULL,
  msg_id INTEGER NOT NULL,
  sender BLOB NOT NULL,
  client_msg_id BLOB,
  type INTEGER NOT NULL,
  body BLOB NOT NULL,
  created_ms INTEGER NOT NULL,
  PRIMARY KEY (conv_id, seq),
  UNIQUE (sender, client_msg_id)
) STRICT;

-- One row per conversation with a stored message or a member: the highest stored seq (the floor a
-- seq counter restores from) and when it last changed (the order conversations are listed in).
CREATE TABLE conversations (
  conv_id BLOB NOT NULL PRIMARY KEY,
  max_seq INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- A user's membership of a conversation and cursors in it. The (conv_id, read_seq) index finds
-- the highest read cursor of the other members without reading their rows, and serves the
-- foreign key.
CREATE TABLE user_conversations (
  uid BLOB NOT NULL,
  conv_id BLOB NOT NULL REFERENCES conversations (conv_id),
  delivered_seq INTEGER NOT NULL DEFAULT 0,
  read_seq INTEGER NOT NULL DEFAULT 0,
  joined_ms INTEGER NOT NULL,
  PRIMARY KEY (uid, conv_id)
) STRICT, WITHOUT ROWID;

CREATE INDEX user_conversations_conv_read ON user_conversations (conv_id, read_seq);
