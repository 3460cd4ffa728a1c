#include "logic/backends/in_process_stores.h"

#include "logic/backends/stored_sends_dedup.h"
#include "logic/group/in_process_fanout_bus.h"
#include "logic/webhooks/in_process_webhook_bus.h"
#include "store/in_memory_group_store.h"
#include "store/in_memory_member_list_cache.h"
#include "store/in_memory_message_store.h"
#include "store/in_memory_presence_store.h"
#include "store/in_memory_restriction_store.h"
#include "store/in_memory_seq_allocator.h"
#include "store/in_memory_session_registry.h"
#include "store/in_memory_ttl_map.h"

namespace im::logic {

LogicStores InProcessStores(const LogicOptions& options, LogicMetrics* metrics,
                            common::MillisClock clock, DurableStores durable) {
  LogicStores stores;
  stores.other_writers = false;
  stores.sqlite = std::move(durable.database);
  const bool restarts_from_disk = durable.messages != nullptr;
  stores.messages = restarts_from_disk ? std::move(durable.messages)
                                       : std::make_unique<store::InMemoryMessageStore>();
  store::MessageStore* message_floor = stores.messages.get();
  stores.seqs = std::make_unique<store::InMemorySeqAllocator>(
      [message_floor](std::string_view conv_id) { return message_floor->MaxSeq(conv_id); },
      restarts_from_disk ? 0 : store::kDefaultSeqRestoreGap);
  stores.sessions = std::make_unique<store::InMemorySessionRegistry>(
      int64_t{options.session_ttl_sec} * 1000, clock);
  stores.gateways = std::make_unique<store::InMemoryTtlMap>(clock);
  stores.resumes = std::make_unique<store::InMemoryTtlMap>(clock);
  stores.presence = std::make_unique<store::InMemoryPresenceStore>();
  std::unique_ptr<store::TtlMap> dedup = std::make_unique<store::InMemoryTtlMap>(clock);
  // Entries in memory forget what messages on disk remember: a claim checks the store.
  stores.dedup = restarts_from_disk
                     ? std::make_unique<StoredSendsDedup>(std::move(dedup), stores.messages.get(),
                                                          int64_t{options.dedup_ttl_sec} * 1000)
                     : std::move(dedup);
  stores.ledger =
      std::make_unique<store::ComposedSendLedger>(stores.dedup.get(), stores.seqs.get());
  stores.groups = durable.groups != nullptr ? std::move(durable.groups)
                                            : std::make_unique<store::InMemoryGroupStore>();
  stores.member_lists = std::make_unique<store::InMemoryMemberListCache>();
  stores.restrictions = durable.restrictions != nullptr
                            ? std::move(durable.restrictions)
                            : std::make_unique<store::InMemoryRestrictionStore>();
  stores.fanout =
      std::make_unique<InProcessFanoutBus>(options.fanout_queue, options.fanout_batch_max, metrics);
  stores.webhooks = std::make_unique<InProcessWebhookBus>(metrics);
  return stores;
}

}  // namespace im::logic
