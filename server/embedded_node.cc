#include "server/embedded_node.h"

#include "common/clock.h"
#include "common/logging.h"
#include "logic/backends/in_process_stores.h"
#include "server/in_process_logic_link.h"
#include "store/sqlite_database.h"
#include "store/sqlite_group_store.h"
#include "store/sqlite_message_store.h"
#include "store/sqlite_restriction_store.h"

namespace im::server {
namespace {

absl::StatusOr<logic::DurableStores> OpenDatabase(const ServerOptions& options) {
  store::SqliteOptions sqlite;
  sqlite.path = options.database_path();
  absl::StatusOr<std::unique_ptr<store::SqliteDatabase>> database =
      store::SqliteDatabase::Open(sqlite);
  if (!database.ok()) return database.status();
  logic::DurableStores durable;
  durable.database = std::move(*database);
  durable.messages = std::make_unique<store::SqliteMessageStore>(*durable.database);
  durable.groups = std::make_unique<store::SqliteGroupStore>(*durable.database);
  durable.restrictions = std::make_unique<store::SqliteRestrictionStore>(*durable.database);
  return durable;
}

}  // namespace

absl::StatusOr<std::unique_ptr<EmbeddedNode>> EmbeddedNode::Start(const ServerOptions& options,
                                                                  prometheus::Registry& registry) {
  absl::StatusOr<DataDir> data = DataDir::Lock(options.data_dir);
  if (!data.ok()) return data.status();
  absl::StatusOr<logic::DurableStores> durable = OpenDatabase(options);
  if (!durable.ok()) return durable.status();
  std::unique_ptr<EmbeddedNode> node(new EmbeddedNode(options, registry, std::move(*data)));

  absl::StatusOr<std::unique_ptr<logic::LogicServer>> logic = logic::LogicServer::StartInProcess(
      options.logic,
      logic::InProcessStores(options.logic, &node->logic_metrics_, common::UnixMillis,
                             std::move(*durable)),
      &node->logic_metrics_);
  if (!logic.ok()) return logic.status();
  node->logic_ = std::move(*logic);

  logic::LogicServer* server = node->logic_.get();
  const auto timeout = std::chrono::milliseconds(options.gateway.logic_timeout_ms);
  absl::StatusOr<std::unique_ptr<gateway::Gateway>> gateway = gateway::Gateway::CreateInProcess(
      options.gateway, registry, [server, timeout](gateway::GatewayMetrics* metrics) {
        return std::make_unique<InProcessLogicLink>(server->session_calls(), server->dispatcher(),
                                                    timeout, metrics);
      });
  if (!gateway.ok()) return gateway.status();
  node->gateway_ = std::move(*gateway);

  node->AttachPushes();
  spdlog::info("embedded node: data in {}, database {}", options.data_dir, options.database_path());
  return node;
}

void EmbeddedNode::AttachPushes() {
  gateway::Gateway* gateway = gateway_.get();
  logic_->in_process_pusher()->Attach([gateway](
                                          std::shared_ptr<const im::v1::PushBatchRequest> request,
                                          logic::InProcessPusher::Delivered done) {
    // The request and the reply live until the gateway's loops have handled every push.
    auto reply = std::make_shared<im::v1::PushBatchReply>();
    const im::v1::PushBatchRequest& pushes = *request;
    gateway->DeliverPushes(
        pushes, reply.get(),
        [request = std::move(request), reply, done = std::move(done)](grpc::Status status) mutable {
          std::move(done)(absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                                       status.error_message()),
                          *reply);
        });
  });
}

absl::Status EmbeddedNode::Run() {
  absl::Status status = gateway_->Run();
  StopLogic();
  return status;
}

void EmbeddedNode::StopLogic() {
  if (logic_stopped_ || logic_ == nullptr) return;
  logic_stopped_ = true;
  // The gateway's loops are gone: pushes from here on have no connection to reach.
  logic_->in_process_pusher()->Attach({});
  logic_->Shutdown(std::chrono::milliseconds(options_.logic.shutdown_grace_ms));
}

EmbeddedNode::~EmbeddedNode() {
  // A node that never ran: its gateway stops (loops joined) before logic, which it calls.
  gateway_.reset();
  StopLogic();
  logic_.reset();
}

}  // namespace im::server
