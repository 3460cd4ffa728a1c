#include "logic/admin/restrictions.h"

#include <vector>

#include "common/logging.h"

namespace im::logic {

using store::Restriction;
using store::RestrictionKind;

Restrictions::Restrictions(store::RestrictionStore* store, common::MillisClock now_ms,
                           std::chrono::milliseconds reload_every)
    : store_(store),
      now_ms_(std::move(now_ms)),
      reload_every_(reload_every),
      snapshot_(std::make_shared<const Snapshot>()) {}

Restrictions::~Restrictions() { Stop(); }

void Restrictions::Start() {
  ReloadIfChanged();
  reloader_ = std::thread([this] { ReloadLoop(); });
}

void Restrictions::Stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (reloader_.joinable()) reloader_.join();
}

void Restrictions::ReloadLoop() {
  std::unique_lock lock(mutex_);
  while (!wake_.wait_for(lock, reload_every_, [this] { return stopping_; })) {
    lock.unlock();
    ReloadIfChanged();
    lock.lock();
  }
}

void Restrictions::ReloadIfChanged() {
  absl::StatusOr<uint64_t> version = store_->Version();
  if (version.ok()) {
    std::lock_guard lock(mutex_);
    if (loaded_version_ == *version) return;
  }
  absl::StatusOr<std::vector<Restriction>> live =
      version.ok() ? store_->LoadLive(now_ms_()) : version.status();
  if (!live.ok()) {
    IM_LOG_RATE_LIMITED(spdlog::level::warn, "restrictions: cannot reload, keeping the last: {}",
                        live.status().ToString());
    return;
  }
  auto loaded = std::make_shared<Snapshot>();
  for (Restriction& restriction : *live) {
    Key key{restriction.kind, restriction.subject};
    loaded->emplace(std::move(key), std::move(restriction));
  }
  std::lock_guard lock(mutex_);
  none_.store(loaded->empty(), std::memory_order_release);
  snapshot_ = std::move(loaded);
  loaded_version_ = *version;
}

std::shared_ptr<const Restrictions::Snapshot> Restrictions::Current() const {
  std::lock_guard lock(mutex_);
  return snapshot_;
}

std::optional<Restriction> Restrictions::Find(RestrictionKind kind,
                                              const std::string& subject) const {
  if (none_.load(std::memory_order_acquire)) return std::nullopt;  // the usual case
  const std::shared_ptr<const Snapshot> snapshot = Current();
  const auto found = snapshot->find(Key{kind, subject});
  if (found == snapshot->end() || found->second.until_ms <= now_ms_()) return std::nullopt;
  return found->second;
}

int64_t Restrictions::UserMutedUntil(const std::string& uid) const {
  const auto mute = Find(RestrictionKind::kUserMute, uid);
  return mute ? mute->until_ms : 0;
}

int64_t Restrictions::GroupMutedUntil(const std::string& group_id) const {
  const auto mute = Find(RestrictionKind::kGroupMute, group_id);
  return mute ? mute->until_ms : 0;
}

int64_t Restrictions::TokensRevokedBefore(const std::string& uid) const {
  const auto revocation = Find(RestrictionKind::kTokenRevocation, uid);
  return revocation ? revocation->since_ms : 0;
}

template <typename Change>
void Restrictions::Edit(Change change) {
  std::lock_guard lock(mutex_);
  auto edited = std::make_shared<Snapshot>(*snapshot_);
  change(*edited);
  none_.store(edited->empty(), std::memory_order_release);
  snapshot_ = std::move(edited);
}

absl::Status Restrictions::Put(const Restriction& restriction) {
  if (absl::Status status = store_->Put(restriction); !status.ok()) return status;
  Edit([&](Snapshot& snapshot) {
    snapshot.insert_or_assign(Key{restriction.kind, restriction.subject}, restriction);
  });
  return absl::OkStatus();
}

absl::StatusOr<bool> Restrictions::Remove(RestrictionKind kind, const std::string& subject) {
  absl::StatusOr<bool> removed = store_->Remove(kind, subject);
  if (!removed.ok()) return removed;
  Edit([&](Snapshot& snapshot) { snapshot.erase(Key{kind, subject}); });
  return removed;
}

}  // namespace im::logic
