// One contract, every backend: the in-process store always, the SQLite one on a fresh database file
// per test, the MySQL one against the real MariaDB whose address IM_TEST_MYSQL gives
// (scripts/test.sh starts it). A missing server is a failure, never a skip. The MariaDB database
// is shared and never wiped, so each test uses its own group ids and uids.
#include "store/group_store.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <thread>

#include "fmt/format.h"
#include "store/group_rules.h"
#include "store/in_memory_group_store.h"
#include "store/message_rules.h"
#include "store/mysql_group_store.h"
#include "store/schema_migrator.h"
#include "store/sqlite_group_store.h"
#include "store/tests/backend_name.h"
#include "store/tests/test_mysql.h"
#include "store/tests/test_sqlite.h"

namespace im::store {
namespace {

class InMemoryBackend {
 public:
  static constexpr char kName[] = "InMemory";
  GroupStore& store() { return store_; }

 private:
  InMemoryGroupStore store_;
};

class MySqlBackend {
 public:
  static constexpr char kName[] = "MySql";
  MySqlBackend() : pool_(testing::TestMySqlOptions()), store_(pool_) {
    absl::Status status = ApplyMigrations(pool_);
    EXPECT_TRUE(status.ok()) << status;
  }
  GroupStore& store() { return store_; }

 private:
  MySqlConnectionPool pool_;
  MySqlGroupStore store_;
};

class SqliteBackend {
 public:
  static constexpr char kName[] = "Sqlite";
  SqliteBackend() : store_(database_.database()) {}
  GroupStore& store() { return store_; }

 private:
  testing::TestSqliteDatabase database_;
  SqliteGroupStore store_;
};

template <typename Backend>
class GroupStoreContractTest : public ::testing::Test {
 protected:
  GroupStoreContractTest() : prefix_(testing::UniquePrefix()) {}

  GroupStore& store() { return backend_.store(); }
  std::string Uid(std::string_view name) { return prefix_ + std::string(name); }
  std::string Id(std::string_view name) { return prefix_ + std::string(name); }

  static GroupMember Member(std::string uid, im::v1::GroupRole role = im::v1::MEMBER,
                            uint64_t joined_seq = 0, int64_t joined_ms = 0) {
    GroupMember member;
    member.uid = std::move(uid);
    member.role = role;
    member.joined_seq = joined_seq;
    member.joined_ms = joined_ms;
    return member;
  }
  // Group Id(name) owned by Uid("owner"), created at 1000 ms.
  Group MakeGroup(std::string_view name) {
    Group group;
    group.group_id = Id(name);
    group.name = fmt::format("group {}", name);
    group.owner = Uid("owner");
    group.created_ms = 1'000;
    return group;
  }
  // Group Id(name) with the owner and Uid(each of `others`) as members, joined at seq 0.
  Group CreateOk(std::string_view name, std::initializer_list<std::string_view> others = {},
                 uint32_t cap = 100) {
    Group group = MakeGroup(name);
    std::vector<GroupMember> members = {Member(group.owner, im::v1::OWNER, 0, 1'000)};
    for (std::string_view other : others) members.push_back(Member(Uid(other), im::v1::MEMBER));
    absl::Status status = store().CreateGroup(group, members, cap);
    EXPECT_TRUE(status.ok()) << status;
    return group;
  }
  std::vector<GroupMember> AddOk(const std::string& group_id,
                                 const std::vector<GroupMember>& members, uint32_t cap = 100) {
    absl::StatusOr<std::vector<GroupMember>> added = store().AddMembers(group_id, members, cap);
    EXPECT_TRUE(added.ok()) << added.status();
    return added.value_or(std::vector<GroupMember>());
  }
  uint32_t MemberCount(const std::string& group_id) {
    absl::StatusOr<std::optional<Group>> group = store().GetGroup(group_id);
    EXPECT_TRUE(group.ok()) << group.status();
    EXPECT_TRUE(group.ok() && group->has_value()) << "no group " << group_id;
    return group.ok() && group->has_value() ? (*group)->member_count : 0;
  }
  std::optional<GroupMember> GetMember(const std::string& group_id, const std::string& uid) {
    absl::StatusOr<std::optional<GroupMember>> member = store().GetMember(group_id, uid);
    EXPECT_TRUE(member.ok()) << member.status();
    return member.value_or(std::nullopt);
  }
  // Every member, paging `limit` at a time.
  std::vector<std::string> AllUids(const std::string& group_id, uint32_t limit = 1000) {
    std::vector<std::string> uids;
    std::string after;
    for (;;) {
      absl::StatusOr<std::vector<GroupMember>> page = store().ListMembers(group_id, after, limit);
      EXPECT_TRUE(page.ok()) << page.status();
      if (!page.ok() || page->empty()) return uids;
      for (const GroupMember& member : *page) uids.push_back(member.uid);
      after = page->back().uid;
    }
  }

  static void ExpectMember(const GroupMember& actual, const GroupMember& expected) {
    EXPECT_EQ(actual.uid, expected.uid);
    EXPECT_EQ(actual.role, expected.role) << actual.uid;
    EXPECT_EQ(actual.joined_seq, expected.joined_seq) << actual.uid;
    EXPECT_EQ(actual.joined_ms, expected.joined_ms) << actual.uid;
  }

  std::string prefix_;
  Backend backend_;
};

using Backends = ::testing::Types<InMemoryBackend, SqliteBackend, MySqlBackend>;
TYPED_TEST_SUITE(GroupStoreContractTest, Backends, testing::BackendName);

TYPED_TEST(GroupStoreContractTest, CreatesAGroupWithItsMembers) {
  Group group = this->MakeGroup("team");
  group.name = "Team \xF0\x9F\x98\x80 caf\xC3\xA9";  // any UTF-8
  group.member_count = 99;                           // ignored
  const std::vector<GroupMember> members = {
      this->Member(group.owner, im::v1::OWNER, 0, 1'000),
      this->Member(this->Uid("bob"), im::v1::ADMIN, 0, 1'001),
      this->Member(this->Uid("carol"), im::v1::MEMBER, 7, 1'002)};
  ASSERT_TRUE(this->store().CreateGroup(group, members, 3).ok());

  absl::StatusOr<std::optional<Group>> stored = this->store().GetGroup(group.group_id);
  ASSERT_TRUE(stored.ok()) << stored.status();
  ASSERT_TRUE(stored->has_value());
  EXPECT_EQ((*stored)->group_id, group.group_id);
  EXPECT_EQ((*stored)->name, group.name);
  EXPECT_EQ((*stored)->owner, group.owner);
  EXPECT_EQ((*stored)->created_ms, 1'000);
  EXPECT_EQ((*stored)->member_count, 3u);
  for (const GroupMember& member : members) {
    const std::optional<GroupMember> got = this->GetMember(group.group_id, member.uid);
    ASSERT_TRUE(got.has_value()) << member.uid;
    this->ExpectMember(*got, member);
  }
  EXPECT_FALSE(this->GetMember(group.group_id, this->Uid("dave")).has_value());
  EXPECT_FALSE(this->GetMember(this->Id("none"), group.owner).has_value());

  absl::StatusOr<std::optional<Group>> none = this->store().GetGroup(this->Id("none"));
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_FALSE(none->has_value());
}

TYPED_TEST(GroupStoreContractTest, ATakenIdIsAlreadyExistsAndChangesNothing) {
  this->CreateOk("team", {"bob"});
  Group again = this->MakeGroup("team");
  again.name = "another";
  again.owner = this->Uid("mallory");
  const absl::Status status = this->store().CreateGroup(
      again, {this->Member(again.owner, im::v1::OWNER), this->Member(this->Uid("eve"))}, 100);
  EXPECT_EQ(status.code(), absl::StatusCode::kAlreadyExists) << status;
  absl::StatusOr<std::optional<Group>> stored = this->store().GetGroup(this->Id("team"));
  ASSERT_TRUE(stored.ok() && stored->has_value());
  EXPECT_EQ((*stored)->name, "group team");
  EXPECT_EQ((*stored)->owner, this->Uid("owner"));
  EXPECT_EQ((*stored)->member_count, 2u);
  EXPECT_FALSE(this->GetMember(this->Id("team"), this->Uid("eve")).has_value());
  EXPECT_FALSE(this->GetMember(this->Id("team"), this->Uid("mallory")).has_value());
}

TYPED_TEST(GroupStoreContractTest, CreateOverTheCapWritesNothing) {
  const Group group = this->MakeGroup("team");
  std::vector<GroupMember> members = {this->Member(group.owner, im::v1::OWNER),
                                      this->Member(this->Uid("bob")),
                                      this->Member(this->Uid("carol"))};
  EXPECT_EQ(this->store().CreateGroup(group, members, 2).code(),
            absl::StatusCode::kResourceExhausted);
  absl::StatusOr<std::optional<Group>> stored = this->store().GetGroup(group.group_id);
  ASSERT_TRUE(stored.ok());
  EXPECT_FALSE(stored->has_value());
  EXPECT_FALSE(this->GetMember(group.group_id, group.owner).has_value());

  // A uid listed twice counts once, as first listed.
  members.push_back(this->Member(this->Uid("bob"), im::v1::ADMIN));
  ASSERT_TRUE(this->store().CreateGroup(group, members, 3).ok());
  EXPECT_EQ(this->MemberCount(group.group_id), 3u);
  EXPECT_EQ(this->GetMember(group.group_id, this->Uid("bob"))->role, im::v1::MEMBER);
}

TYPED_TEST(GroupStoreContractTest, CreateNeedsTheOwnerAsItsOneOwner) {
  const Group group = this->MakeGroup("team");
  const std::string bob = this->Uid("bob");
  const std::vector<std::pair<std::string, std::vector<GroupMember>>> cases = {
      {"owner missing", {this->Member(bob)}},
      {"owner not OWNER", {this->Member(group.owner, im::v1::ADMIN), this->Member(bob)}},
      {"another OWNER",
       {this->Member(group.owner, im::v1::OWNER), this->Member(bob, im::v1::OWNER)}},
      {"no members", {}},
  };
  for (const auto& [what, members] : cases) {
    EXPECT_EQ(this->store().CreateGroup(group, members, 100).code(),
              absl::StatusCode::kInvalidArgument)
        << what;
  }
  absl::StatusOr<std::optional<Group>> stored = this->store().GetGroup(group.group_id);
  ASSERT_TRUE(stored.ok());
  EXPECT_FALSE(stored->has_value());
}

TYPED_TEST(GroupStoreContractTest, AddMembersKeepsThoseAlreadyInTheGroup) {
  const std::string id = this->CreateOk("team", {"bob"}).group_id;
  const GroupMember carol = this->Member(this->Uid("carol"), im::v1::MEMBER, 5, 5'000);
  const GroupMember dave = this->Member(this->Uid("dave"), im::v1::ADMIN, 5, 5'000);
  const std::vector<GroupMember> added =
      this->AddOk(id, {carol, this->Member(this->Uid("bob"), im::v1::ADMIN, 5, 5'000), dave,
                       this->Member(this->Uid("carol"), im::v1::ADMIN, 6, 6'000)});
  ASSERT_EQ(added.size(), 4u);
  this->ExpectMember(added[0], carol);
  this->ExpectMember(added[1], this->Member(this->Uid("bob"), im::v1::MEMBER, 0, 0));
  this->ExpectMember(added[2], dave);
  this->ExpectMember(added[3], carol);  // listed twice: the first entry counts
  EXPECT_EQ(this->MemberCount(id), 4u);
  this->ExpectMember(*this->GetMember(id, this->Uid("bob")),
                     this->Member(this->Uid("bob"), im::v1::MEMBER, 0, 0));
  this->ExpectMember(*this->GetMember(id, this->Uid("carol")), carol);

  // Adding only members already in never fails on the cap, even one the group is over.
  const std::vector<GroupMember> again = this->AddOk(id, {this->Member(this->Uid("dave"))}, 1);
  ASSERT_EQ(again.size(), 1u);
  this->ExpectMember(again[0], dave);
  EXPECT_TRUE(this->AddOk(id, {}, 1).empty());
  EXPECT_EQ(this->MemberCount(id), 4u);
}

TYPED_TEST(GroupStoreContractTest, AddMembersIsAllOrNothingAtTheCap) {
  const std::string id = this->CreateOk("team", {"bob"}).group_id;
  const auto exhausted = absl::StatusCode::kResourceExhausted;
  EXPECT_EQ(this->store()
                .AddMembers(id,
                            {this->Member(this->Uid("bob")), this->Member(this->Uid("c")),
                             this->Member(this->Uid("d")), this->Member(this->Uid("e"))},
                            4)
                .status()
                .code(),
            exhausted);
  EXPECT_EQ(this->MemberCount(id), 2u);
  EXPECT_EQ(this->AllUids(id), (std::vector<std::string>{this->Uid("bob"), this->Uid("owner")}));

  EXPECT_EQ(this->AddOk(id, {this->Member(this->Uid("c")), this->Member(this->Uid("d"))}, 4).size(),
            2u);
  EXPECT_EQ(this->MemberCount(id), 4u);
  EXPECT_EQ(this->store().AddMembers(id, {this->Member(this->Uid("e"))}, 4).status().code(),
            exhausted);
  EXPECT_EQ(this->AddOk(id, {this->Member(this->Uid("e"))}, 5).size(), 1u);
  EXPECT_EQ(this->MemberCount(id), 5u);
  EXPECT_EQ(this->AllUids(id).size(), 5u);
}

TYPED_TEST(GroupStoreContractTest, AddMembersToNoGroupIsNotFound) {
  EXPECT_EQ(this->store()
                .AddMembers(this->Id("none"), {this->Member(this->Uid("bob"))}, 10)
                .status()
                .code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(this->store().AddMembers(this->Id("none"), {}, 10).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_FALSE(this->GetMember(this->Id("none"), this->Uid("bob")).has_value());
  EXPECT_TRUE(this->AllUids(this->Id("none")).empty());
}

TYPED_TEST(GroupStoreContractTest, ConcurrentAddsNeverPassTheCap) {
  // 4 threads add 8 pairs each to a group of 1 with a cap of 20: exactly 9 pairs fit (21 > 20).
  const std::string id = this->CreateOk("busy").group_id;
  constexpr int kThreads = 4;
  constexpr int kPairs = 8;
  std::atomic<int> added{0};
  std::atomic<int> exhausted{0};
  std::atomic<int> failed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int p = 0; p < kPairs; ++p) {
        const std::vector<GroupMember> pair = {
            this->Member(this->Uid(fmt::format("u{}-{}-a", t, p))),
            this->Member(this->Uid(fmt::format("u{}-{}-b", t, p)))};
        absl::StatusOr<std::vector<GroupMember>> result = this->store().AddMembers(id, pair, 20);
        if (result.ok()) {
          ++added;
        } else if (result.status().code() == absl::StatusCode::kResourceExhausted) {
          ++exhausted;
        } else {
          ++failed;
          ADD_FAILURE() << result.status();
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(added.load(), 9);
  EXPECT_EQ(exhausted.load(), kThreads * kPairs - 9);
  EXPECT_EQ(this->MemberCount(id), 19u);
  const std::vector<std::string> uids = this->AllUids(id, 4);
  EXPECT_EQ(uids.size(), 19u);
  // Each pair is in whole or not at all.
  for (int t = 0; t < kThreads; ++t) {
    for (int p = 0; p < kPairs; ++p) {
      const bool a = this->GetMember(id, this->Uid(fmt::format("u{}-{}-a", t, p))).has_value();
      const bool b = this->GetMember(id, this->Uid(fmt::format("u{}-{}-b", t, p))).has_value();
      EXPECT_EQ(a, b) << t << "/" << p;
    }
  }
}

TYPED_TEST(GroupStoreContractTest, RemoveMember) {
  const std::string id = this->CreateOk("team", {"bob", "carol"}).group_id;
  const std::string bob = this->Uid("bob");
  absl::StatusOr<bool> removed = this->store().RemoveMember(id, bob);
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_TRUE(*removed);
  EXPECT_EQ(this->MemberCount(id), 2u);
  EXPECT_FALSE(this->GetMember(id, bob).has_value());
  EXPECT_EQ(this->AllUids(id), (std::vector<std::string>{this->Uid("carol"), this->Uid("owner")}));

  removed = this->store().RemoveMember(id, bob);
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_FALSE(*removed);
  EXPECT_EQ(this->MemberCount(id), 2u);
  removed = this->store().RemoveMember(this->Id("none"), bob);
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_FALSE(*removed);

  // A member who comes back joins anew; the freed place counts against the cap again.
  const std::vector<GroupMember> back =
      this->AddOk(id, {this->Member(bob, im::v1::MEMBER, 9, 9'000)}, 3);
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].joined_seq, 9u);
  EXPECT_EQ(this->MemberCount(id), 3u);
}

TYPED_TEST(GroupStoreContractTest, SetRoleChangesOneMemberAndHandsOwnershipOver) {
  const std::string id = this->CreateOk("team", {"bob", "carol"}).group_id;
  const std::string owner = this->Uid("owner");
  const std::string bob = this->Uid("bob");
  const std::string carol = this->Uid("carol");
  ASSERT_TRUE(this->store().SetRole(id, bob, im::v1::ADMIN).ok());
  EXPECT_EQ(this->GetMember(id, bob)->role, im::v1::ADMIN);
  EXPECT_EQ(this->GetMember(id, bob)->joined_seq, 0u);
  ASSERT_TRUE(this->store().SetRole(id, bob, im::v1::ADMIN).ok());  // no change is fine
  ASSERT_TRUE(this->store().SetRole(id, bob, im::v1::MEMBER).ok());
  EXPECT_EQ(this->GetMember(id, bob)->role, im::v1::MEMBER);

  // Making carol OWNER hands the group over: the owner steps down to ADMIN.
  ASSERT_TRUE(this->store().SetRole(id, carol, im::v1::OWNER).ok());
  EXPECT_EQ(this->GetMember(id, carol)->role, im::v1::OWNER);
  EXPECT_EQ(this->GetMember(id, owner)->role, im::v1::ADMIN);
  EXPECT_EQ(this->GetMember(id, bob)->role, im::v1::MEMBER);
  absl::StatusOr<std::optional<Group>> group = this->store().GetGroup(id);
  ASSERT_TRUE(group.ok() && group->has_value());
  EXPECT_EQ((*group)->owner, carol);
  EXPECT_EQ((*group)->member_count, 3u);
  ASSERT_TRUE(this->store().SetRole(id, carol, im::v1::OWNER).ok());
  EXPECT_EQ(this->GetMember(id, carol)->role, im::v1::OWNER);

  const auto not_found = absl::StatusCode::kNotFound;
  EXPECT_EQ(this->store().SetRole(id, this->Uid("dave"), im::v1::ADMIN).code(), not_found);
  EXPECT_EQ(this->store().SetRole(this->Id("none"), bob, im::v1::ADMIN).code(), not_found);
  EXPECT_FALSE(this->GetMember(id, this->Uid("dave")).has_value());
}

TYPED_TEST(GroupStoreContractTest, ListMembersPagesInUidOrder) {
  // Byte order: upper case before lower case.
  const std::string id = this->CreateOk("team", {"m", "b", "Z", "k", "a", "y"}).group_id;
  std::vector<std::string> expected = {this->Uid("Z"), this->Uid("a"), this->Uid("b"),
                                       this->Uid("k"), this->Uid("m"), this->Uid("owner"),
                                       this->Uid("y")};
  const auto page = [&](std::string_view after, uint32_t limit) {
    absl::StatusOr<std::vector<GroupMember>> members = this->store().ListMembers(id, after, limit);
    EXPECT_TRUE(members.ok()) << members.status();
    std::vector<std::string> uids;
    for (const GroupMember& member : members.value_or(std::vector<GroupMember>())) {
      uids.push_back(member.uid);
    }
    return uids;
  };
  EXPECT_EQ(page("", 3), (std::vector<std::string>{expected[0], expected[1], expected[2]}));
  EXPECT_EQ(page(expected[2], 3),
            (std::vector<std::string>{expected[3], expected[4], expected[5]}));
  EXPECT_EQ(page(expected[5], 3), (std::vector<std::string>{expected[6]}));
  EXPECT_TRUE(page(expected[6], 3).empty());
  EXPECT_EQ(page(this->Uid("c"), 2), (std::vector<std::string>{expected[3], expected[4]}));
  EXPECT_EQ(page("", 100), expected);
  EXPECT_EQ(this->AllUids(id, 1), expected);

  absl::StatusOr<std::vector<GroupMember>> members = this->store().ListMembers(id, "", 100);
  ASSERT_TRUE(members.ok());
  ASSERT_EQ(members->size(), expected.size());
  this->ExpectMember((*members)[5], this->Member(this->Uid("owner"), im::v1::OWNER, 0, 1'000));
  EXPECT_EQ(this->store().ListMembers(id, "", 0).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TYPED_TEST(GroupStoreContractTest, DeleteGroupReturnsItsMembersAndLeavesNothing) {
  const std::string id = this->CreateOk("team", {"carol", "bob", "Zed"}).group_id;
  const std::string other = this->CreateOk("other", {"bob"}).group_id;
  ASSERT_TRUE(this->store().SetRole(id, this->Uid("bob"), im::v1::ADMIN).ok());
  ASSERT_TRUE(this->store().RemoveMember(id, this->Uid("carol")).ok());

  absl::StatusOr<std::vector<std::string>> deleted = this->store().DeleteGroup(id);
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  // Byte order, the removed member not among them.
  EXPECT_EQ(*deleted,
            (std::vector<std::string>{this->Uid("Zed"), this->Uid("bob"), this->Uid("owner")}));

  absl::StatusOr<std::optional<Group>> gone = this->store().GetGroup(id);
  ASSERT_TRUE(gone.ok()) << gone.status();
  EXPECT_FALSE(gone->has_value());
  for (const char* uid : {"owner", "bob", "Zed", "carol"}) {
    EXPECT_FALSE(this->GetMember(id, this->Uid(uid)).has_value()) << uid;
  }
  EXPECT_TRUE(this->AllUids(id).empty());
  const auto not_found = absl::StatusCode::kNotFound;
  EXPECT_EQ(this->store().AddMembers(id, {this->Member(this->Uid("dave"))}, 10).status().code(),
            not_found);
  EXPECT_EQ(this->store().SetRole(id, this->Uid("bob"), im::v1::MEMBER).code(), not_found);

  // Another group with the same members is untouched.
  EXPECT_EQ(this->MemberCount(other), 2u);
  EXPECT_EQ(this->AllUids(other), (std::vector<std::string>{this->Uid("bob"), this->Uid("owner")}));

  EXPECT_EQ(this->store().DeleteGroup(id).status().code(), not_found);
  EXPECT_EQ(this->store().DeleteGroup(this->Id("none")).status().code(), not_found);
}

TYPED_TEST(GroupStoreContractTest, ADeletedGroupsIdMayBeUsedAgain) {
  const std::string id = this->CreateOk("team", {"bob", "carol"}).group_id;
  ASSERT_TRUE(this->store().DeleteGroup(id).ok());

  Group again = this->MakeGroup("team");
  again.name = "second";
  again.owner = this->Uid("erin");
  again.created_ms = 2'000;
  const GroupMember erin = this->Member(again.owner, im::v1::OWNER, 40, 2'000);
  const GroupMember bob = this->Member(this->Uid("bob"), im::v1::MEMBER, 40, 2'001);
  ASSERT_TRUE(this->store().CreateGroup(again, {erin, bob}, 2).ok());
  absl::StatusOr<std::optional<Group>> stored = this->store().GetGroup(id);
  ASSERT_TRUE(stored.ok() && stored->has_value()) << stored.status();
  EXPECT_EQ((*stored)->name, "second");
  EXPECT_EQ((*stored)->owner, again.owner);
  EXPECT_EQ((*stored)->created_ms, 2'000);
  EXPECT_EQ((*stored)->member_count, 2u);
  // The new group's members only, as they joined it: nothing of the old group's carries over.
  EXPECT_EQ(this->AllUids(id), (std::vector<std::string>{this->Uid("bob"), this->Uid("erin")}));
  this->ExpectMember(*this->GetMember(id, this->Uid("bob")), bob);
  EXPECT_FALSE(this->GetMember(id, this->Uid("owner")).has_value());
  EXPECT_FALSE(this->GetMember(id, this->Uid("carol")).has_value());

  absl::StatusOr<std::vector<std::string>> deleted = this->store().DeleteGroup(id);
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(*deleted, (std::vector<std::string>{this->Uid("bob"), this->Uid("erin")}));
}

TYPED_TEST(GroupStoreContractTest, DeleteGroupRacingAddsLeavesNoMemberBehind) {
  // Whatever adds land before the delete are returned by it; none lands after it.
  const std::string id = this->CreateOk("busy").group_id;
  std::atomic<int> landed{0};
  std::atomic<bool> adder_done{false};
  std::vector<std::string> added;  // the adder's until joined
  std::thread adder([&] {
    for (int i = 0; i < 1'000; ++i) {
      const std::string uid = this->Uid(fmt::format("m{:04}", i));
      absl::StatusOr<std::vector<GroupMember>> result =
          this->store().AddMembers(id, {this->Member(uid)}, 10'000);
      if (!result.ok()) {
        EXPECT_EQ(result.status().code(), absl::StatusCode::kNotFound) << result.status();
        break;
      }
      added.push_back(uid);
      ++landed;
    }
    adder_done = true;
  });
  // Delete while the adder is under way: after a few of its adds, before it runs out.
  while (landed.load() < 3 && !adder_done.load()) std::this_thread::yield();
  absl::StatusOr<std::vector<std::string>> deleted = this->store().DeleteGroup(id);
  adder.join();
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  std::vector<std::string> expected = added;
  expected.push_back(this->Uid("owner"));
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(*deleted, expected);
  EXPECT_TRUE(this->AllUids(id).empty());
}

TYPED_TEST(GroupStoreContractTest, RejectsArgumentsTheSchemaCannotHold) {
  const auto invalid = absl::StatusCode::kInvalidArgument;
  const std::string id = this->CreateOk("team", {"bob"}).group_id;
  const std::string bob = this->Uid("bob");
  const std::vector<std::string> bad_ids = {"",
                                            std::string(kMaxGroupIdBytes + 1, 'g'),
                                            "a b",
                                            "g:x",
                                            "caf\xC3\xA9",
                                            std::string("a\0b", 3),
                                            "a/b",
                                            "a.b"};
  for (const std::string& bad : bad_ids) {
    Group group = this->MakeGroup("x");
    group.group_id = bad;
    EXPECT_EQ(
        this->store().CreateGroup(group, {this->Member(group.owner, im::v1::OWNER)}, 10).code(),
        invalid)
        << bad;
    EXPECT_EQ(this->store().GetGroup(bad).status().code(), invalid) << bad;
    EXPECT_EQ(this->store().AddMembers(bad, {this->Member(bob)}, 10).status().code(), invalid);
    EXPECT_EQ(this->store().RemoveMember(bad, bob).status().code(), invalid) << bad;
    EXPECT_EQ(this->store().SetRole(bad, bob, im::v1::ADMIN).code(), invalid) << bad;
    EXPECT_EQ(this->store().GetMember(bad, bob).status().code(), invalid) << bad;
    EXPECT_EQ(this->store().ListMembers(bad, "", 10).status().code(), invalid) << bad;
    EXPECT_EQ(this->store().DeleteGroup(bad).status().code(), invalid) << bad;
  }

  const std::vector<std::string> bad_names = {
      std::string(kMaxGroupNameChars + 1, 'n'),
      "\xFF",              // never in UTF-8
      "\xC0\xAF",          // overlong '/'
      "\xE2\x82",          // cut short
      "\xED\xA0\x80",      // a surrogate
      "\xF4\x90\x80\x80",  // above U+10FFFF
      "a\x80",             // a stray continuation byte
  };
  for (const std::string& bad : bad_names) {
    Group group = this->MakeGroup("named");
    group.name = bad;
    EXPECT_EQ(
        this->store().CreateGroup(group, {this->Member(group.owner, im::v1::OWNER)}, 10).code(),
        invalid)
        << bad.size();
  }

  const std::vector<std::string> bad_uids = {"", std::string(kMaxUidBytes + 1, 'u')};
  for (const std::string& bad : bad_uids) {
    Group group = this->MakeGroup("owned");
    group.owner = bad;
    EXPECT_EQ(this->store().CreateGroup(group, {this->Member(bad, im::v1::OWNER)}, 10).code(),
              invalid);
    EXPECT_EQ(this->store().AddMembers(id, {this->Member(bad)}, 10).status().code(), invalid);
    EXPECT_EQ(this->store().RemoveMember(id, bad).status().code(), invalid);
    EXPECT_EQ(this->store().SetRole(id, bad, im::v1::ADMIN).code(), invalid);
    EXPECT_EQ(this->store().GetMember(id, bad).status().code(), invalid);
  }
  EXPECT_EQ(this->store().ListMembers(id, std::string(kMaxUidBytes + 1, 'u'), 10).status().code(),
            invalid);

  const std::vector<im::v1::GroupRole> bad_roles = {im::v1::GROUP_ROLE_UNSPECIFIED,
                                                    static_cast<im::v1::GroupRole>(7)};
  for (im::v1::GroupRole role : bad_roles) {
    EXPECT_EQ(this->store().SetRole(id, bob, role).code(), invalid) << role;
    EXPECT_EQ(
        this->store().AddMembers(id, {this->Member(this->Uid("carol"), role)}, 10).status().code(),
        invalid)
        << role;
  }
  // Ownership moves with SetRole, never with AddMembers.
  EXPECT_EQ(this->store()
                .AddMembers(id, {this->Member(this->Uid("carol"), im::v1::OWNER)}, 10)
                .status()
                .code(),
            invalid);
  // One bad entry refuses the whole request.
  EXPECT_EQ(this->store()
                .AddMembers(id, {this->Member(this->Uid("carol")), this->Member("")}, 10)
                .status()
                .code(),
            invalid);
  EXPECT_EQ(this->MemberCount(id), 2u);
  EXPECT_EQ(this->GetMember(id, bob)->role, im::v1::MEMBER);
  for (const char* name : {"x", "named", "owned"}) {
    absl::StatusOr<std::optional<Group>> none = this->store().GetGroup(this->Id(name));
    ASSERT_TRUE(none.ok());
    EXPECT_FALSE(none->has_value()) << name;
  }

  // Exactly at the limits is fine.
  Group widest = this->MakeGroup("");
  widest.group_id = this->prefix_ + std::string(kMaxGroupIdBytes - this->prefix_.size(), 'W');
  widest.name.clear();
  // 128 characters of four bytes each: the column counts characters.
  for (size_t i = 0; i < kMaxGroupNameChars; ++i) widest.name += "\xF0\x9F\x98\x80";
  widest.owner = this->prefix_ + std::string(kMaxUidBytes - this->prefix_.size(), 'o');
  ASSERT_TRUE(
      this->store().CreateGroup(widest, {this->Member(widest.owner, im::v1::OWNER)}, 10).ok());
  absl::StatusOr<std::optional<Group>> stored = this->store().GetGroup(widest.group_id);
  ASSERT_TRUE(stored.ok() && stored->has_value()) << stored.status();
  EXPECT_EQ((*stored)->name, widest.name);
  EXPECT_EQ((*stored)->owner, widest.owner);
  Group unnamed = this->MakeGroup("unnamed");
  unnamed.name.clear();
  EXPECT_TRUE(
      this->store().CreateGroup(unnamed, {this->Member(unnamed.owner, im::v1::OWNER)}, 10).ok());
}

TEST(MySqlGroupStoreTest, ClosedPortIsUnavailableQuicklyNotACrash) {
  MySqlOptions options = testing::TestMySqlOptions();
  options.port = 1;  // nothing listens there
  options.connect_timeout = std::chrono::seconds(2);
  MySqlConnectionPool pool(options);
  MySqlGroupStore store(pool);
  const auto start = std::chrono::steady_clock::now();
  const auto unavailable = absl::StatusCode::kUnavailable;
  Group group;
  group.group_id = "g1";
  group.owner = "u";
  GroupMember owner;
  owner.uid = "u";
  owner.role = im::v1::OWNER;
  GroupMember other;
  other.uid = "v";
  EXPECT_EQ(store.CreateGroup(group, {owner}, 10).code(), unavailable);
  EXPECT_EQ(store.GetGroup("g1").status().code(), unavailable);
  EXPECT_EQ(store.AddMembers("g1", {other}, 10).status().code(), unavailable);
  EXPECT_EQ(store.RemoveMember("g1", "v").status().code(), unavailable);
  EXPECT_EQ(store.SetRole("g1", "v", im::v1::ADMIN).code(), unavailable);
  EXPECT_EQ(store.GetMember("g1", "v").status().code(), unavailable);
  EXPECT_EQ(store.DeleteGroup("g1").status().code(), unavailable);
  absl::Status listed = store.ListMembers("g1", "", 10).status();
  EXPECT_EQ(listed.code(), unavailable);
  EXPECT_NE(listed.message().find("127.0.0.1:1"), std::string_view::npos) << listed;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  EXPECT_EQ(pool.open_connections(), 0u);
}

}  // namespace
}  // namespace im::store
