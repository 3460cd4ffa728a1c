#include "store/in_memory_member_list_cache.h"

namespace im::store {

InMemoryMemberListCache::Entry& InMemoryMemberListCache::EntryOf(std::string_view group_id) {
  auto it = entries_.find(group_id);
  if (it == entries_.end()) {
    it = entries_.emplace(std::string(group_id), Entry{NewVersionToken(), std::nullopt}).first;
  }
  return it->second;
}

absl::StatusOr<std::string> InMemoryMemberListCache::Version(std::string_view group_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  return EntryOf(group_id).version;
}

absl::StatusOr<std::optional<std::vector<GroupMember>>> InMemoryMemberListCache::Get(
    std::string_view group_id, std::string_view version) {
  std::lock_guard<std::mutex> lock(mutex_);
  const Entry& entry = EntryOf(group_id);
  if (entry.version != version) return std::optional<std::vector<GroupMember>>();
  return entry.members;
}

absl::Status InMemoryMemberListCache::Put(std::string_view group_id, std::string_view version,
                                          const std::vector<GroupMember>& members) {
  std::lock_guard<std::mutex> lock(mutex_);
  Entry& entry = EntryOf(group_id);
  if (entry.version == version) entry.members = members;
  return absl::OkStatus();
}

absl::Status InMemoryMemberListCache::Invalidate(std::string_view group_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  entries_[std::string(group_id)] = Entry{NewVersionToken(), std::nullopt};
  return absl::OkStatus();
}

}  // namespace im::store
