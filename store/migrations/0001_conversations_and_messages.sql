-- Messages, conversations and per-user cursors (DESIGN.md section 7). Every statement can run
-- again after a failure half way: MySQL cannot roll DDL back, so a cut-short migration is finished
-- by the next run.
--
-- Identifiers are compared byte for byte: conv_id is binary (it embeds uids, so any bytes a uid may
-- hold), text columns are utf8mb4_bin. Lengths are those store/message_rules.h checks.

-- One row per message. client_msg_id is NULL when the sender gave none: NULLs never collide in
-- the unique key, so only messages with one are deduplicated.
CREATE TABLE IF NOT EXISTS messages (
  conv_id VARBINARY(140) NOT NULL,
  seq BIGINT UNSIGNED NOT NULL,
  msg_id BIGINT UNSIGNED NOT NULL,
  sender VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  client_msg_id VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
  type INT NOT NULL,
  body MEDIUMBLOB NOT NULL,
  created_ms BIGINT NOT NULL,
  PRIMARY KEY (conv_id, seq),
  UNIQUE KEY uk_messages_sender_client_msg_id (sender, client_msg_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- One row per conversation with a stored message: the highest stored seq (the floor a seq
-- counter restores from) and when it last changed (the order conversations are listed in).
CREATE TABLE IF NOT EXISTS conversations (
  conv_id VARBINARY(140) NOT NULL,
  max_seq BIGINT UNSIGNED NOT NULL,
  updated_ms BIGINT NOT NULL,
  PRIMARY KEY (conv_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- A user's membership of a conversation and cursors in it. The (conv_id, read_seq) index finds
-- the highest read cursor of the other members without reading their rows.
CREATE TABLE IF NOT EXISTS user_conversations (
  uid VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  conv_id VARBINARY(140) NOT NULL,
  delivered_seq BIGINT UNSIGNED NOT NULL DEFAULT 0,
  read_seq BIGINT UNSIGNED NOT NULL DEFAULT 0,
  joined_ms BIGINT NOT NULL,
  PRIMARY KEY (uid, conv_id),
  KEY idx_user_conversations_conv_read (conv_id, read_seq)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
