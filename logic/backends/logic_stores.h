#pragma once

#include <functional>
#include <memory>
#include <optional>

#include "logic/group/fanout_bus.h"
#include "logic/loop/logic_loop.h"
#include "logic/webhooks/webhook_bus.h"
#include "store/group_store.h"
#include "store/member_list_cache.h"
#include "store/message_store.h"
#include "store/presence_store.h"
#include "store/redis_async_client.h"
#include "store/redis_options.h"
#include "store/restriction_store.h"
#include "store/send_ledger.h"
#include "store/seq_allocator.h"
#include "store/session_registry.h"
#include "store/ttl_map.h"

namespace im::store {
class MySqlConnectionPool;
class SqliteDatabase;
}  // namespace im::store

namespace im::logic {

// The backends a logic node runs on, every one set: made by ClusterStores (Redis, MySQL, Kafka)
// or InProcessStores (this process only), never chosen piecemeal elsewhere.
struct LogicStores {
  // The MySQL stores borrow this pool; declared first, so destroyed after them. Null in process.
  std::shared_ptr<store::MySqlConnectionPool> mysql;
  // The same for the embedded node's SQLite stores; null elsewhere.
  std::shared_ptr<store::SqliteDatabase> sqlite;
  std::unique_ptr<store::SessionRegistry> sessions;
  std::unique_ptr<store::SeqAllocator> seqs;
  std::unique_ptr<store::MessageStore> messages;
  std::unique_ptr<store::TtlMap> gateways;  // the gateway directory
  std::unique_ptr<store::TtlMap> dedup;
  std::unique_ptr<store::TtlMap> resumes;          // spent resume tokens
  std::unique_ptr<store::PresenceStore> presence;  // who watches whom, last seen, lapse checks
  // Claims and seqs in one step (Redis: one script per send, a batch in one round trip).
  std::unique_ptr<store::SendLedger> ledger;
  std::unique_ptr<store::GroupStore> groups;
  std::unique_ptr<store::MemberListCache> member_lists;
  std::unique_ptr<FanoutBus> fanout;
  std::unique_ptr<WebhookBus> webhooks;  // business callbacks' events (logic/webhooks)
  std::unique_ptr<store::RestrictionStore> restrictions;  // the admin API's mutes and revocations
  // Whether other processes may write the same conversations (a cluster's stores); false when
  // they are this process's alone, so that nothing written before it started is still in flight.
  bool other_writers = true;

  // For the node's send loop and login loop (LogicLoop): where their asynchronous Redis clients
  // connect and the stores made on each. Absent in process: sends take their claims, their
  // messages are delivered, and logins are registered, on the executors.
  struct LoopRedis {
    store::RedisOptions options;
    LogicLoop::MakeStores make_stores;
    LogicLoop::MakeStores make_login_stores;
  };
  std::optional<LoopRedis> loop_redis;
};

}  // namespace im::logic
