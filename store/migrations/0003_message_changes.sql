-- Recall and edit (im.v1 MessageType RECALL and EDIT). A change is a message of its own (ref_seq:
-- the seq it changes), and the changed message carries its current version: recalled (its body
-- deleted) or edited_ms (its body replaced). change_seq is the seq of the change that made that
-- version, so that of two changes landing out of order the later seq wins.
--
-- One statement, so that MySQL applies all four columns or none (atomic DDL); the migrator records
-- the version right after it.
ALTER TABLE messages
  ADD COLUMN ref_seq BIGINT UNSIGNED NOT NULL DEFAULT 0,
  ADD COLUMN recalled TINYINT NOT NULL DEFAULT 0,
  ADD COLUMN edited_ms BIGINT NOT NULL DEFAULT 0,
  ADD COLUMN change_seq BIGINT UNSIGNED NOT NULL DEFAULT 0;
