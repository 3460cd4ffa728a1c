-- Restrictions an administrator put on users and groups (store/restriction_store.h): mutes and
-- token revocations, kept on disk so that a revocation survives a restart of the embedded node.
-- kind is a RestrictionKind value (1 user mute, 2 group mute, 3 token revocation); subject is a
-- uid or a group id, a BLOB compared byte for byte like the identifiers of 0001 and 0002.
-- Lapsed rows are deleted by the next Put; until then reads leave them out by until_ms.
CREATE TABLE restrictions (
  kind INTEGER NOT NULL,
  subject BLOB NOT NULL,
  since_ms INTEGER NOT NULL,
  until_ms INTEGER NOT NULL,
  PRIMARY KEY (kind, subject)
) STRICT, WITHOUT ROWID;
