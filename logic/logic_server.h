#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>

#include "absl/status/statusor.h"
#include "common/bounded_executor.h"
#include "logic/chat_service.h"
#include "logic/fanout_bus.h"
#include "logic/gateway_pusher.h"
#include "logic/group_fanout.h"
#include "logic/group_service.h"
#include "logic/ingress/request_dispatcher.h"
#include "logic/logic_metrics.h"
#include "logic/logic_options.h"
#include "logic/logic_service_impl.h"
#include "logic/member_lists.h"
#include "logic/message_writer.h"
#include "logic/msg_id_generator.h"
#include "logic/session_service.h"
#include "store/group_store.h"
#include "store/member_list_cache.h"
#include "store/message_store.h"
#include "store/send_ledger.h"
#include "store/seq_allocator.h"
#include "store/session_registry.h"
#include "store/ttl_map.h"

namespace im::logic {

// The backends a logic node runs on: Redis and MySQL in production, in-process ones in tests.
struct LogicStores {
  std::unique_ptr<store::SessionRegistry> sessions;
  std::unique_ptr<store::SeqAllocator> seqs;
  std::unique_ptr<store::MessageStore> messages;
  std::unique_ptr<store::TtlMap> gateways;  // the gateway directory
  std::unique_ptr<store::TtlMap> dedup;
  // Claims and seqs in one step (Redis: one script); null: composed of `dedup` and `seqs`.
  std::unique_ptr<store::SendLedger> ledger;
  std::unique_ptr<store::GroupStore> groups;
  std::unique_ptr<store::MemberListCache> member_lists;
  // Kafka in a cluster; null: an in-process bus (single node).
  std::unique_ptr<FanoutBus> fanout;
};

// One im-logic node: the stores, the executor, the group-commit writer, the push client, the
// group fan-out and the LogicService gRPC server, wired together and torn down in order.
class LogicServer {
 public:
  static absl::StatusOr<std::unique_ptr<LogicServer>> Start(const LogicOptions& options,
                                                            LogicStores stores,
                                                            prometheus::Registry& registry);
  ~LogicServer();

  int grpc_port() const { return grpc_port_; }

  // Whether the fan-out bus's broker answers (readiness); see FanoutBus::CheckReachable. Any
  // thread, before Shutdown.
  absl::Status CheckFanoutBus(std::chrono::milliseconds timeout) {
    return stores_.fanout->CheckReachable(timeout);
  }

  // Stops accepting calls, lets calls in flight finish (bounded by `grace`), persists what is
  // queued, waits for pushes in flight. Idempotent.
  void Shutdown(std::chrono::milliseconds grace);

 private:
  LogicServer(const LogicOptions& options, LogicStores stores, prometheus::Registry& registry);

  const LogicOptions options_;
  LogicStores stores_;
  LogicMetrics metrics_;
  MsgIdGenerator msg_ids_;
  std::unique_ptr<common::BoundedExecutor> executor_;
  std::unique_ptr<MessageWriter> writer_;
  std::unique_ptr<GatewayPusher> pusher_;
  std::unique_ptr<SessionService> session_service_;
  std::unique_ptr<MemberLists> member_lists_;
  std::unique_ptr<GroupFanout> group_fanout_;
  std::unique_ptr<ChatService> chat_service_;
  std::unique_ptr<GroupService> group_service_;
  std::unique_ptr<RequestDispatcher> dispatcher_;
  std::unique_ptr<LogicServiceImpl> service_;
  std::unique_ptr<grpc::Server> server_;
  int grpc_port_ = 0;
  bool shut_down_ = false;
};

}  // namespace im::logic
