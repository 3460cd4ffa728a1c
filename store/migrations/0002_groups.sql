-- Groups and their members (DESIGN.md section 7: `groups` and `group_members`). Every statement can
-- run again after a failure half way, as in 0001.
--
-- The groups table is named im_groups: GROUPS is a reserved word in MySQL 8.0.2 and later (window
-- frames), so a table called groups works on MariaDB but breaks there unless every statement
-- quotes it, and one forgotten quote is a syntax error found in production.
--
-- Text columns are utf8mb4_bin, compared byte for byte, as in 0001. Lengths are those
-- store/message_rules.h and store/group_rules.h check: group ids are 1-64 bytes of [A-Za-z0-9_-],
-- names at most 128 bytes of UTF-8, uids as in user_conversations.

-- One row per group. member_count is the number of group_members rows of the group; every change
-- of membership locks this row first (SELECT ... FOR UPDATE) and moves the count in the same
-- transaction, so the member cap holds under concurrent adds. owner is the member with role OWNER.
CREATE TABLE IF NOT EXISTS im_groups (
  group_id VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  name VARCHAR(128) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  owner VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  created_ms BIGINT NOT NULL,
  member_count INT UNSIGNED NOT NULL,
  PRIMARY KEY (group_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- One row per member. role is an im.v1.GroupRole value (1 MEMBER, 2 ADMIN, 3 OWNER); the member
-- sees the group's messages with seq > joined_seq. The primary key lists a group's members in uid
-- order, which is how they are paged.
CREATE TABLE IF NOT EXISTS group_members (
  group_id VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  uid VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  role TINYINT UNSIGNED NOT NULL,
  joined_seq BIGINT UNSIGNED NOT NULL,
  joined_ms BIGINT NOT NULL,
  PRIMARY KEY (group_id, uid)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
