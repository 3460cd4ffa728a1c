#include "logic/group/member_lists.h"

#include <algorithm>

#include "common/logging.h"
#include "common/status_macros.h"

namespace im::logic {
namespace {

constexpr uint32_t kLoadPage = 1'000;

}  // namespace

MemberLists::MemberLists(store::GroupStore* groups, store::MemberListCache* cache,
                         size_t max_local_groups, LogicMetrics* metrics)
    : groups_(groups), cache_(cache), max_local_groups_(max_local_groups), metrics_(metrics) {}

absl::StatusOr<std::shared_ptr<const MemberLists::List>> MemberLists::Get(
    const std::string& group_id) {
  IM_ASSIGN_OR_RETURN(const std::string version, cache_->Version(group_id));
  if (std::shared_ptr<const List> local = LocalCopyOf(group_id, version)) return local;
  IM_ASSIGN_OR_RETURN(std::optional<List> shared, cache_->Get(group_id, version));
  std::shared_ptr<const List> members;
  if (shared.has_value()) {
    List list = std::move(*shared);
    std::sort(
        list.begin(), list.end(),
        [](const store::GroupMember& a, const store::GroupMember& b) { return a.uid < b.uid; });
    members = std::make_shared<const List>(std::move(list));
  } else {
    IM_ASSIGN_OR_RETURN(List loaded, LoadFromStore(group_id));
    members = std::make_shared<const List>(std::move(loaded));
    // Saved under the version read before loading: if the membership changed meanwhile, the
    // token moved on and this stale list is not saved.
    if (absl::Status status = cache_->Put(group_id, version, *members); !status.ok()) {
      IM_LOG_RATE_LIMITED(spdlog::level::warn, "member list of {} not cached: {}", group_id,
                          status.ToString());
    }
  }
  KeepLocal(group_id, version, members);
  return members;
}

std::shared_ptr<const MemberLists::List> MemberLists::LocalCopyOf(const std::string& group_id,
                                                                  const std::string& version) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = local_.find(group_id);
  if (it == local_.end() || it->second.version != version) return nullptr;
  return it->second.members;
}

std::shared_ptr<const MemberLists::List> MemberLists::LastLocalCopy(const std::string& group_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = local_.find(group_id);
  return it == local_.end() ? nullptr : it->second.members;
}

absl::StatusOr<MemberLists::List> MemberLists::LoadFromStore(const std::string& group_id) {
  metrics_->group_list_loads.Increment();
  List members;
  for (std::string after;;) {
    IM_ASSIGN_OR_RETURN(List page, groups_->ListMembers(group_id, after, kLoadPage));
    for (store::GroupMember& member : page) members.push_back(std::move(member));
    if (page.size() < kLoadPage) return members;
    after = members.back().uid;
  }
}

void MemberLists::KeepLocal(const std::string& group_id, const std::string& version,
                            std::shared_ptr<const List> members) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (local_.size() >= max_local_groups_ && local_.count(group_id) == 0) {
    // Crude but bounded: forget an arbitrary group; it is reloaded from Redis when next used.
    local_.erase(local_.begin());
  }
  local_[group_id] = LocalCopy{version, std::move(members)};
}

absl::StatusOr<std::optional<store::GroupMember>> MemberLists::Find(const std::string& group_id,
                                                                    const std::string& uid) {
  IM_ASSIGN_OR_RETURN(std::shared_ptr<const List> members, Get(group_id));
  return MemberOf(*members, uid);
}

std::optional<store::GroupMember> MemberLists::MemberOf(const List& members,
                                                        const std::string& uid) {
  const store::GroupMember* member = FindIn(members, uid);
  if (member == nullptr) return std::nullopt;
  return *member;
}

absl::Status MemberLists::Invalidate(const std::string& group_id) {
  absl::Status status = cache_->Invalidate(group_id);
  std::lock_guard<std::mutex> lock(mutex_);
  local_.erase(group_id);
  return status;
}

const store::GroupMember* MemberLists::FindIn(const List& members, const std::string& uid) {
  auto it = std::lower_bound(
      members.begin(), members.end(), uid,
      [](const store::GroupMember& member, const std::string& key) { return member.uid < key; });
  return it != members.end() && it->uid == uid ? &*it : nullptr;
}

}  // namespace im::logic
