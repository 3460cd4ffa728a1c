#include "logic/logic_server.h"

#include "absl/strings/str_cat.h"
#include "common/logging.h"

namespace im::logic {

int64_t UnixMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

LogicServer::LogicServer(const LogicOptions& options, LogicStores stores,
                         prometheus::Registry& registry)
    : options_(options),
      stores_(std::move(stores)),
      metrics_(registry),
      msg_ids_(options.node_number, UnixMillis) {
  executor_ = std::make_unique<common::BoundedExecutor>("logic-store", options_.executor_threads,
                                                        options_.executor_queue);
  MessageWriter::Options writer_options;
  writer_options.writers = options_.writers;
  writer_options.batch_max = options_.write_batch_max;
  writer_options.queue_capacity = options_.write_queue;
  writer_options.write_deadline_ms = options_.write_deadline_ms;
  writer_ = std::make_unique<MessageWriter>(stores_.messages.get(), writer_options, UnixMillis,
                                            &metrics_);
  pusher_ = std::make_unique<GatewayPusher>(
      stores_.gateways.get(), stores_.sessions.get(), executor_.get(),
      std::chrono::milliseconds(options_.push_timeout_ms),
      std::chrono::seconds(options_.gateway_ttl_sec), &metrics_);
  session_service_ =
      std::make_unique<SessionService>(options_, stores_.sessions.get(), pusher_.get(), UnixMillis);
  chat_service_ = std::make_unique<ChatService>(
      options_,
      ChatDependencies{stores_.sessions.get(), stores_.seqs.get(), stores_.messages.get(),
                       stores_.dedup.get(), writer_.get(), pusher_.get(), &msg_ids_,
                       executor_.get()},
      UnixMillis);
  service_ = std::make_unique<LogicServiceImpl>(session_service_.get(), chat_service_.get(),
                                                executor_.get(), &metrics_);
}

absl::StatusOr<std::unique_ptr<LogicServer>> LogicServer::Start(const LogicOptions& options,
                                                                LogicStores stores,
                                                                prometheus::Registry& registry) {
  std::unique_ptr<LogicServer> server(new LogicServer(options, std::move(stores), registry));
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.grpc_address, grpc::InsecureServerCredentials(),
                           &server->grpc_port_);
  builder.RegisterService(server->service_.get());
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || server->grpc_port_ == 0) {
    server->Shutdown(std::chrono::milliseconds(0));
    return absl::UnavailableError(
        absl::StrCat("cannot serve LogicService on ", options.grpc_address));
  }
  return server;
}

LogicServer::~LogicServer() { Shutdown(std::chrono::milliseconds(0)); }

void LogicServer::Shutdown(std::chrono::milliseconds grace) {
  if (shut_down_) return;
  shut_down_ = true;
  // Calls already received keep running (on the executor and the writer, which are still up)
  // until answered or the grace period ends. Then the writer persists what was handed to it, the
  // executor runs what is queued (the pushes of those messages), and the pushes finish.
  if (server_) server_->Shutdown(std::chrono::system_clock::now() + grace);
  writer_->Shutdown();
  executor_->Shutdown();
  pusher_->WaitIdle(std::chrono::milliseconds(options_.push_timeout_ms) + std::chrono::seconds(1));
  if (server_) server_->Wait();
  spdlog::info("logic {}: stopped", options_.logic_id);
}

}  // namespace im::logic
