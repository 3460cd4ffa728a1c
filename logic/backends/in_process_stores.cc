#include "logic/backends/in_process_stores.h"

#include "logic/group/in_process_fanout_bus.h"
#include "store/in_memory_group_store.h"
#include "store/in_memory_member_list_cache.h"
#include "store/in_memory_message_store.h"
#include "store/in_memory_seq_allocator.h"
#include "store/in_memory_session_registry.h"
#include "store/in_memory_ttl_map.h"

namespace im::logic {

LogicStores InProcessStores(const LogicOptions& options, LogicMetrics* metrics,
                            common::MillisClock clock) {
  LogicStores stores;
  auto messages = std::make_unique<store::InMemoryMessageStore>();
  store::InMemoryMessageStore* message_floor = messages.get();
  stores.seqs = std::make_unique<store::InMemorySeqAllocator>(
      [message_floor](std::string_view conv_id) { return message_floor->MaxSeq(conv_id); });
  stores.messages = std::move(messages);
  stores.sessions = std::make_unique<store::InMemorySessionRegistry>(
      int64_t{options.session_ttl_sec} * 1000, clock);
  stores.gateways = std::make_unique<store::InMemoryTtlMap>(clock);
  stores.dedup = std::make_unique<store::InMemoryTtlMap>(clock);
  stores.ledger =
      std::make_unique<store::ComposedSendLedger>(stores.dedup.get(), stores.seqs.get());
  stores.groups = std::make_unique<store::InMemoryGroupStore>();
  stores.member_lists = std::make_unique<store::InMemoryMemberListCache>();
  stores.fanout =
      std::make_unique<InProcessFanoutBus>(options.fanout_queue, options.fanout_batch_max, metrics);
  return stores;
}

}  // namespace im::logic
