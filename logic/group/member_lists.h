#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "logic/logic_metrics.h"
#include "store/group_store.h"
#include "store/member_list_cache.h"

namespace im::logic {

// Group member lists as logic reads them: this node's copy, valid while the group's version token
// in the shared cache is unchanged; else the shared cache's list; else the database's (saved back
// to the shared cache). A read therefore costs one Redis round trip in the common case, and a
// membership change (Invalidate) is seen by every node's next read.
// Thread-safe; calls block on Redis and MySQL, so they run on logic's executor or fan-out threads.
class MemberLists {
 public:
  using List = std::vector<store::GroupMember>;  // in uid order

  MemberLists(store::GroupStore* groups, store::MemberListCache* cache, size_t max_local_groups,
              LogicMetrics* metrics);

  // The group's members; empty when there is no such group.
  absl::StatusOr<std::shared_ptr<const List>> Get(const std::string& group_id);

  // This node's copy of the group's list if it is the one of `version` (a token the caller read
  // from the shared cache), else null. Never blocks.
  std::shared_ptr<const List> LocalCopyOf(const std::string& group_id, const std::string& version);

  // This node's last copy of the group's list, whatever its version (null when it holds none),
  // for what an out-of-date list does no harm to, such as choosing a fan-out lane by size.
  // Never blocks.
  std::shared_ptr<const List> LastLocalCopy(const std::string& group_id);

  // uid's membership, nullopt when it is not a member.
  absl::StatusOr<std::optional<store::GroupMember>> Find(const std::string& group_id,
                                                         const std::string& uid);

  // After a membership change: every node's next read loads the new list.
  absl::Status Invalidate(const std::string& group_id);

  static const store::GroupMember* FindIn(const List& members, const std::string& uid);
  // uid's membership in `members`, nullopt when it is not a member.
  static std::optional<store::GroupMember> MemberOf(const List& members, const std::string& uid);

 private:
  absl::StatusOr<List> LoadFromStore(const std::string& group_id);
  void KeepLocal(const std::string& group_id, const std::string& version,
                 std::shared_ptr<const List> members);

  store::GroupStore* groups_;
  store::MemberListCache* cache_;
  const size_t max_local_groups_;
  LogicMetrics* metrics_;

  struct LocalCopy {
    std::string version;
    std::shared_ptr<const List> members;
  };
  std::mutex mutex_;
  std::map<std::string, LocalCopy> local_;
};

}  // namespace im::logic
