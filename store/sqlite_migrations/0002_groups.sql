-- Groups and their members: the tables of store/migrations/0002 for SQLite, typed as in 0001.
-- The groups table is im_groups as in MySQL (GROUPS is a keyword of window frames here too).
-- Lengths are those store/group_rules.h checks.

-- One row per group. member_count is the number of group_members rows of the group, moved in the
-- transaction that adds or removes them; owner is the member last made OWNER.
CREATE TABLE im_groups (
  group_id BLOB NOT NULL PRIMARY KEY,
  name TEXT NOT NULL,
  owner BLOB NOT NULL,
  created_ms INTEGER NOT NULL,
  member_count INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- One row per member. role is an im.v1.GroupRole value (1 MEMBER, 2 ADMIN, 3 OWNER); the member
-- sees the group's messages with seq > joined_seq. The primary key lists a group's members in uid
-- order, which is how they are paged.
CREATE TABLE group_members (
  group_id BLOB NOT NULL REFERENCES im_groups (group_id),
  uid BLOB NOT NULL,
  role INTEGER NOT NULL,
  joined_seq INTEGER NOT NULL,
  joined_ms INTEGER NOT NULL,
  PRIMARY KEY (group_id, uid)
) STRICT, WITHOUT ROWID;
