#pragma once

#include <map>
#include <mutex>
#include <string>

#include "store/member_list_cache.h"

namespace im::store {

// MemberListCache in process memory, for unit tests and the single-node mode.
class InMemoryMemberListCache final : public MemberListCache {
 public:
  absl::StatusOr<std::string> Version(std::string_view group_id) override;
  absl::StatusOr<std::optional<std::vector<GroupMember>>> Get(std::string_view group_id,
                                                              std::string_view version) override;
  absl::Status Put(std::string_view group_id, std::string_view version,
                   const std::vector<GroupMember>& members) override;
  absl::Status Invalidate(std::string_view group_id) override;

 private:
  struct Entry {
    std::string version;
    std::optional<std::vector<GroupMember>> members;
  };
  // Requires mutex_.
  Entry& EntryOf(std::string_view group_id);

  std::mutex mutex_;
  std::map<std::string, Entry, std::less<>> entries_;
};

}  // namespace im::store
