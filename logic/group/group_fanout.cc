#include "logic/group/group_fanout.h"

#include <algorithm>
#include <condition_variable>
#include <map>
#include <mutex>

#include "common/after_all.h"
#include "common/logging.h"
#include "logic/conversation/conversation_id.h"

namespace im::logic {

// Counts the pushes a Deliver started, so it can wait for the last one. Shared with the pushes'
// completions, so a reply after Deliver gave up waiting touches nothing freed.
class GroupFanout::PushesInFlight : public std::enable_shared_from_this<PushesInFlight> {
 public:
  std::function<void()> Started() {
    std::lock_guard<std::mutex> lock(mutex_);
    ++pending_;
    return [self = shared_from_this()] {
      std::lock_guard<std::mutex> held(self->mutex_);
      if (--self->pending_ == 0) self->idle_.notify_all();
    };
  }
  bool WaitIdle(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mutex_);
    return idle_.wait_for(lock, timeout, [this] { return pending_ == 0; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable idle_;
  int pending_ = 0;
};

// The members of one group with no session, gathered from its pages' lookups as positions in
// the member list (one list for the whole batch, however many records); the last page to answer
// publishes each record's offline event(s), holding Deliver until the bus has them all.
class GroupFanout::OfflineMembers {
 public:
  OfflineMembers(Webhooks* webhooks, std::shared_ptr<const MemberLists::List> list,
                 std::shared_ptr<const Records> records, size_t pages,
                 std::function<void()> published)
      : webhooks_(webhooks),
        list_(std::move(list)),
        records_(std::move(records)),
        pages_left_(pages),
        published_(std::move(published)) {}

  // One page's members without a session (none when its lookup failed: who is offline there is
  // unknown, and they get no event).
  void PageDone(const std::vector<size_t>& page) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      offline_.insert(offline_.end(), page.begin(), page.end());
      if (--pages_left_ > 0) return;
    }
    Publish();
  }

 private:
  // With every page in: no other thread touches offline_ any more.
  void Publish() {
    const std::function<void()> done = common::AfterAll(records_->size(), published_);
    for (const im::v1::FanoutRecord& record : *records_) {
      const im::v1::Message& message = record.message();
      std::vector<std::string> uids;
      for (size_t position : offline_) {
        const store::GroupMember& member = (*list_)[position];
        if (message.seq() > member.joined_seq && member.uid != message.sender()) {
          uids.push_back(member.uid);
        }
      }
      std::sort(uids.begin(), uids.end());
      webhooks_->GroupMembersOffline(message, uids, done);
    }
  }

  Webhooks* webhooks_;
  std::shared_ptr<const MemberLists::List> list_;
  std::shared_ptr<const Records> records_;
  std::mutex mutex_;
  std::vector<size_t> offline_;  // positions in list_; guarded by mutex_ until the last page
  size_t pages_left_;            // guarded by mutex_
  std::function<void()> published_;
};

GroupFanout::GroupFanout(MemberLists* members, RecipientLookup* recipients, Pusher* pusher,
                         size_t lookup_page, std::chrono::milliseconds push_timeout,
                         LogicMetrics* metrics, Clock now_ms, Webhooks* webhooks)
    : members_(members),
      recipients_(recipients),
      pusher_(pusher),
      lookup_page_(lookup_page),
      push_timeout_(push_timeout),
      metrics_(metrics),
      now_ms_(std::move(now_ms)),
      webhooks_(webhooks) {}

void GroupFanout::Deliver(const std::vector<im::v1::FanoutRecord>& batch) {
  // Groups in order of first appearance; records of a group keep their order. Each group's
  // records are copied: a push may outlive this call when its gateway does not answer.
  std::vector<std::string> order;
  std::map<std::string, Records> by_group;
  for (const im::v1::FanoutRecord& record : batch) {
    std::optional<ConversationId> conversation = ConversationId::Parse(record.message().conv_id());
    if (!conversation || conversation->kind != ConversationId::Kind::kGroup) {
      IM_LOG_RATE_LIMITED(spdlog::level::err, "fan-out record for '{}' is not a group's: skipped",
                          record.message().conv_id());
      continue;
    }
    Records& records = by_group[conversation->group_id];
    if (records.empty()) order.push_back(conversation->group_id);
    records.push_back(record);
    spdlog::debug("fan-out {}: {}#{}", record.request_id(), record.message().conv_id(),
                  record.message().seq());
  }
  // Publishing runs on executor threads, so a group's records reach the bus in about, not
  // exactly, seq order: put each batch back in order before it is pushed.
  for (auto& [group_id, records] : by_group) {
    std::stable_sort(records.begin(), records.end(), [](const auto& a, const auto& b) {
      return a.message().seq() < b.message().seq();
    });
  }
  auto pushes = std::make_shared<PushesInFlight>();
  for (const std::string& group_id : order) {
    DeliverGroup(group_id, std::make_shared<const Records>(std::move(by_group[group_id])), pushes);
  }
  // Every push has its own deadline; the margin only guards against a reply that never comes.
  if (!pushes->WaitIdle(push_timeout_ + std::chrono::seconds(1))) {
    spdlog::warn("fan-out: pushes still unanswered after {} ms; going on",
                 (push_timeout_ + std::chrono::seconds(1)).count());
  }
  const int64_t now = now_ms_();
  for (const im::v1::FanoutRecord& record : batch) {
    metrics_->fanout_lag_seconds.Observe(static_cast<double>(now - record.published_ms()) / 1000.0);
  }
  metrics_->fanout_records.Increment(static_cast<double>(batch.size()));
}

void GroupFanout::DeliverGroup(const std::string& group_id, std::shared_ptr<const Records> records,
                               const std::shared_ptr<PushesInFlight>& pushes) {
  absl::StatusOr<std::shared_ptr<const MemberLists::List>> members = members_->Get(group_id);
  if (!members.ok()) {
    IM_LOG_RATE_LIMITED(spdlog::level::warn,
                        "fan-out of group {}: members unknown ({}); they get {} messages by Sync",
                        group_id, members.status().ToString(), records->size());
    return;
  }
  std::shared_ptr<const MemberLists::List> list = *std::move(members);
  std::shared_ptr<OfflineMembers> offline;
  if (webhooks_ != nullptr && webhooks_->WantsOffline() && !list->empty()) {
    const size_t pages = (list->size() + lookup_page_ - 1) / lookup_page_;
    offline = std::make_shared<OfflineMembers>(webhooks_, list, records, pages, pushes->Started());
  }
  for (size_t first = 0; first < list->size(); first += lookup_page_) {
    const size_t end = std::min(list->size(), first + lookup_page_);
    std::vector<std::string> uids;
    uids.reserve(end - first);
    for (size_t i = first; i < end; ++i) uids.push_back((*list)[i].uid);
    recipients_->LookupMany(
        std::move(uids),
        [this, group_id, list, first, records, pushes, offline, looked_up = pushes->Started()](
            const std::vector<std::string>& page, RecipientLookup::Sessions sessions) mutable {
          std::vector<size_t> without_session;
          if (!sessions.ok()) {
            IM_LOG_RATE_LIMITED(spdlog::level::warn, "fan-out of group {}: sessions unknown ({})",
                                group_id, sessions.status().ToString());
          } else {
            if (offline) without_session = WithoutSession(first, *sessions);
            PushPage(*list, first, page, *sessions, *records, pushes);
          }
          if (offline) offline->PageDone(without_session);
          looked_up();
        });
  }
}

std::vector<size_t> GroupFanout::WithoutSession(
    size_t first, const std::vector<std::vector<store::Session>>& sessions) {
  std::vector<size_t> positions;
  for (size_t m = 0; m < sessions.size(); ++m) {
    if (sessions[m].empty()) positions.push_back(first + m);
  }
  return positions;
}

void GroupFanout::PushPage(const MemberLists::List& list, size_t first,
                           const std::vector<std::string>& uids,
                           std::vector<std::vector<store::Session>>& sessions,
                           const Records& records, const std::shared_ptr<PushesInFlight>& pushes) {
  // Devices grouped by the messages they may see: nearly always one set (all of them), so one
  // frame is serialized for the whole page.
  std::map<std::vector<size_t>, std::vector<PushTarget>> by_visible;
  for (size_t m = 0; m < uids.size(); ++m) {
    const store::GroupMember& member = list[first + m];
    for (store::Session& session : sessions[m]) {
      std::vector<size_t> visible;
      for (size_t r = 0; r < records.size(); ++r) {
        const im::v1::FanoutRecord& record = records[r];
        const bool own_connection =
            member.uid == record.message().sender() &&
            session.IsAt(record.sender_gateway_id(), record.sender_conn_id());
        if (record.message().seq() > member.joined_seq && !own_connection) visible.push_back(r);
      }
      if (!visible.empty()) {
        by_visible[std::move(visible)].push_back(PushTarget{member.uid, std::move(session)});
      }
    }
  }
  for (auto& [visible, targets] : by_visible) {
    im::v1::Frame frame;
    for (size_t r : visible) *frame.mutable_message_push()->add_messages() = records[r].message();
    metrics_->fanout_deliveries.Increment(static_cast<double>(targets.size()));
    pusher_->Push(SerializePush(frame), targets, pushes->Started());
  }
}

}  // namespace im::logic
