#pragma once

#include <chrono>
#include <functional>
#include <vector>

#include "common/clock.h"
#include "im/v1/logic.pb.h"
#include "logic/delivery/pusher.h"
#include "logic/delivery/recipient_lookup.h"
#include "logic/group/member_lists.h"
#include "logic/logic_metrics.h"
#include "logic/webhooks/webhooks.h"

namespace im::logic {

// Pushes batches of group messages to their members' online devices: the FanoutBus's Deliver.
// Per group: the member list (MemberLists), then the members' sessions in pages of
// `lookup_page` through the RecipientLookup that single chat delivers with (on the logic loop's
// asynchronous Redis client, every page asked at once), then from each page's reply one Push per
// gateway and frame. A member only gets the messages it may see
// (seq > joined_seq), and the sending connection does not get its own message back.
// With the offline-message webhook on, the members a message finds with no online device (who
// may see it, the sender aside) go in its "message.offline" events.
// Deliver returns once every push was handed over or failed, and every offline event is on the
// webhook bus, so a Kafka offset is committed only after that. Offline members (and any push that
// failed) get the messages by Sync.
class GroupFanout {
 public:
  using Clock = common::MillisClock;  // Unix milliseconds

  GroupFanout(MemberLists* members, RecipientLookup* recipients, Pusher* pusher, size_t lookup_page,
              std::chrono::milliseconds push_timeout, LogicMetrics* metrics, Clock now_ms,
              Webhooks* webhooks = nullptr);

  // Thread-safe; blocks. `batch` may mix groups; each group's records are in seq order.
  void Deliver(const std::vector<im::v1::FanoutRecord>& batch);

 private:
  class PushesInFlight;
  class OfflineMembers;
  using Records = std::vector<im::v1::FanoutRecord>;
  // The records of one group, in seq order.
  void DeliverGroup(const std::string& group_id, std::shared_ptr<const Records> records,
                    const std::shared_ptr<PushesInFlight>& pushes);
  // Pushes the records to the devices of one page of members: `list[first]` onwards, whose
  // uids were looked up.
  void PushPage(const MemberLists::List& list, size_t first, const std::vector<std::string>& uids,
                std::vector<std::vector<store::Session>>& sessions, const Records& records,
                const std::shared_ptr<PushesInFlight>& pushes);
  // The positions in the member list of the page's members (`list[first]` onwards) who have no
  // session.
  static std::vector<size_t> WithoutSession(
      size_t first, const std::vector<std::vector<store::Session>>& sessions);

  MemberLists* members_;
  RecipientLookup* recipients_;
  Pusher* pusher_;
  const size_t lookup_page_;
  const std::chrono::milliseconds push_timeout_;
  LogicMetrics* metrics_;
  Clock now_ms_;
  Webhooks* webhooks_;  // null: no offline events
};

}  // namespace im::logic
