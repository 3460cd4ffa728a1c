#include "logic/logic_server.h"

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/logging.h"
#include "logic/delivery/gateway_pusher.h"

namespace im::logic {

using common::UnixMillis;

namespace {
constexpr int kMaxStreamMessageBytes = 64 * 1024 * 1024;
}  // namespace

LogicServer::LogicServer(const LogicOptions& options, LogicStores stores, LogicMetrics* metrics,
                         Transport transport)
    : options_(options),
      stores_(std::move(stores)),
      metrics_(metrics),
      msg_ids_(options.node_number, UnixMillis),
      sender_limits_(
          common::RateLimit{options.send_rate_per_user, options.send_burst_per_user},
          common::RateLimit{options.group_send_rate_per_user, options.group_send_burst_per_user}) {
  const common::QueueWaitPolicy::Options shed_by_wait{
      std::chrono::milliseconds(options_.queue_wait_target_ms),
      std::chrono::milliseconds(options_.queue_wait_interval_ms)};
  executor_ = std::make_unique<common::BoundedExecutor>(
      "logic-store", options_.executor_threads, options_.executor_queue,
      common::BoundedExecutor::QueueWait{shed_by_wait, [metrics](double seconds) {
                                           metrics->executor_wait_seconds.Observe(seconds);
                                         }});
  login_executor_ = std::make_unique<common::BoundedExecutor>(
      "logic-login", options_.login_threads, options_.login_queue,
      common::BoundedExecutor::QueueWait{shed_by_wait, [metrics](double seconds) {
                                           metrics->login_wait_seconds.Observe(seconds);
                                         }});
  if (!stores_.loop_redis) {
    // One thread numbers the sends in the order the gateways handed them over (the send loop's
    // job when there is one); it only claims and queues, the writer and the executor do the rest.
    send_executor_ = std::make_unique<common::BoundedExecutor>(
        "logic-send", 1, options_.send_loop_queue,
        common::BoundedExecutor::QueueWait{shed_by_wait, [metrics](double seconds) {
                                             metrics->send_loop_wait_seconds.Observe(seconds);
                                           }});
  }
  if (stores_.loop_redis) {
    const LogicLoop::RedisLimits redis_limits{
        options_.send_loop_max_pending,
        std::chrono::milliseconds(options_.send_loop_max_redis_wait_ms)};
    send_loop_ = std::make_unique<LogicLoop>(
        "logic-send", stores_.loop_redis->options, stores_.loop_redis->make_stores,
        options_.send_loop_queue, redis_limits,
        common::QueueWait{shed_by_wait, [metrics](double seconds) {
                            metrics->send_loop_wait_seconds.Observe(seconds);
                          }});
    send_loop_->Start();
    // The login loop's connection carries no deliveries to protect from a timeout, only logins
    // (a timeout fails them UNAVAILABLE and their clients retry): it is bounded by the count of
    // unanswered commands only, and a Redis busy for a moment (the gateways' session refreshes
    // are bursts of thousands of commands) makes logins wait rather than fail.
    login_loop_ = std::make_unique<LogicLoop>(
        "logic-login", stores_.loop_redis->options, stores_.loop_redis->make_login_stores,
        options_.login_queue,
        LogicLoop::RedisLimits{options_.send_loop_max_pending, std::chrono::milliseconds(0)},
        common::QueueWait{shed_by_wait, [metrics](double seconds) {
                            metrics->login_loop_wait_seconds.Observe(seconds);
                          }});
    login_loop_->Start();
  }
  MessageWriter::Options writer_options;
  writer_options.writers = options_.writers;
  writer_options.batch_max = options_.write_batch_max;
  writer_options.queue_capacity = options_.write_queue;
  writer_options.write_deadline_ms = options_.write_deadline_ms;
  MessageWriter::AnswerOn answer_on;
  if (send_loop_) {
    // The loop that took the sends' claims answers them and delivers their messages.
    answer_on = [loop = send_loop_.get()](absl::AnyInvocable<void() &&> answers) {
      return loop->Post(std::move(answers));
    };
  }
  writer_ = std::make_unique<MessageWriter>(stores_.messages.get(), writer_options, UnixMillis,
                                            metrics_, std::move(answer_on));
  if (transport == Transport::kInProcess) {
    auto pusher =
        std::make_unique<InProcessPusher>(stores_.sessions.get(), executor_.get(), metrics_);
    in_process_pusher_ = pusher.get();
    pusher_ = std::move(pusher);
  } else {
    pusher_ = std::make_unique<GatewayPusher>(
        stores_.gateways.get(), stores_.sessions.get(), executor_.get(),
        std::chrono::milliseconds(options_.push_timeout_ms),
        std::chrono::seconds(options_.gateway_ttl_sec), metrics_, options_.push_calls_per_gateway,
        options_.grpc_credentials);
  }
  recipients_ =
      std::make_unique<RecipientLookup>(send_loop_.get(), stores_.sessions.get(), metrics_);
  restrictions_ =
      std::make_unique<Restrictions>(stores_.restrictions.get(), UnixMillis,
                                     std::chrono::milliseconds(options_.restrictions_reload_ms));
  restrictions_->Start();
  presence_service_ = std::make_unique<PresenceService>(
      options_,
      PresenceDependencies{stores_.sessions.get(), stores_.presence.get(), stores_.messages.get(),
                           pusher_.get(), metrics_},
      UnixMillis);
  presence_service_->Start();
  webhooks_ =
      std::make_unique<Webhooks>(options_.webhooks, stores_.webhooks.get(), metrics_, UnixMillis);
  session_service_ = std::make_unique<SessionService>(
      options_, stores_.sessions.get(), pusher_.get(), UnixMillis,
      [presence = presence_service_.get(), webhooks = webhooks_.get()](
          const std::vector<ChangedDevice>& devices, DeviceChange change) {
        presence->DevicesChanged(UidsOf(devices), change);
        webhooks->DevicesChanged(devices, change == DeviceChange::kLoggedIn);
      },
      restrictions_.get());
  member_lists_ = std::make_unique<MemberLists>(stores_.groups.get(), stores_.member_lists.get(),
                                                options_.group_local_cache_groups, metrics_);
  group_fanout_ = std::make_unique<GroupFanout>(
      member_lists_.get(), recipients_.get(), pusher_.get(), options_.fanout_lookup_page,
      std::chrono::milliseconds(options_.push_timeout_ms), metrics_, UnixMillis, webhooks_.get());
  chat_service_ = std::make_unique<ChatService>(
      options_,
      ChatDependencies{
          recipients_.get(), stores_.seqs.get(), stores_.messages.get(), stores_.dedup.get(),
          stores_.resumes.get(), stores_.ledger.get(), writer_.get(), pusher_.get(), &msg_ids_,
          executor_.get(), member_lists_.get(), stores_.fanout.get(), metrics_, send_loop_.get(),
          stores_.other_writers ? 0 : UnixMillis(), restrictions_.get(), webhooks_.get()},
      UnixMillis);
  group_service_ = std::make_unique<GroupService>(
      options_, stores_.groups.get(), stores_.messages.get(), member_lists_.get(), &msg_ids_,
      UnixMillis,
      [this](const std::string& group_id, const std::string& notice_id, std::string body,
             absl::AnyInvocable<void(im::v1::SendResp) &&> done) {
        PostGroupNotice(group_id, notice_id, std::move(body), std::move(done));
      });
  dispatcher_ = std::make_unique<RequestDispatcher>(
      session_service_.get(), chat_service_.get(), group_service_.get(), presence_service_.get(),
      &sender_limits_,
      RequestDispatcher::Executors{executor_.get(), login_executor_.get(), send_executor_.get()},
      metrics_, UnixMillis, RequestDispatcher::Loops{send_loop_.get(), login_loop_.get()},
      webhooks_->before_send());
  session_calls_ = std::make_unique<SessionCalls>(
      session_service_.get(), RequestDispatcher::Executors{executor_.get(), login_executor_.get()},
      metrics_);
  admin_operations_ = std::make_unique<AdminOperations>(AdminDependencies{
      &options_, dispatcher_.get(), session_service_.get(), stores_.sessions.get(),
      stores_.groups.get(), group_service_.get(), restrictions_.get(), UnixMillis});
  if (transport == Transport::kGrpc) {
    IngressStream::Limits stream_limits;
    stream_limits.max_in_flight = options_.stream_max_in_flight;
    stream_limits.max_age = std::chrono::milliseconds(options_.max_connection_age_ms);
    service_ = std::make_unique<LogicServiceImpl>(session_calls_.get(), dispatcher_.get(), metrics_,
                                                  stream_limits);
  }
}

absl::StatusOr<std::unique_ptr<LogicServer>> LogicServer::Start(const LogicOptions& options,
                                                                LogicStores stores,
                                                                LogicMetrics* metrics) {
  return StartWith(options, std::move(stores), metrics, Transport::kGrpc);
}

absl::StatusOr<std::unique_ptr<LogicServer>> LogicServer::StartInProcess(
    const LogicOptions& options, LogicStores stores, LogicMetrics* metrics) {
  return StartWith(options, std::move(stores), metrics, Transport::kInProcess);
}

absl::StatusOr<std::unique_ptr<LogicServer>> LogicServer::StartWith(const LogicOptions& options,
                                                                    LogicStores stores,
                                                                    LogicMetrics* metrics,
                                                                    Transport transport) {
  std::unique_ptr<LogicServer> server(
      new LogicServer(options, std::move(stores), metrics, transport));
  GroupFanout* fanout = server->group_fanout_.get();
  absl::Status status = server->stores_.fanout->Start(
      [fanout](const std::vector<im::v1::FanoutRecord>& batch) { fanout->Deliver(batch); });
  if (status.ok()) status = server->webhooks_->Start();
  if (status.ok() && transport == Transport::kGrpc) status = server->ServeGrpc();
  if (status.ok()) status = server->ServeAdminApi();
  if (!status.ok()) {
    server->Shutdown(std::chrono::milliseconds(0));
    return status;
  }
  return server;
}

absl::Status LogicServer::ServeGrpc() {
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options_.grpc_address, options_.grpc_credentials.Server(), &grpc_port_);
  builder.RegisterService(service_.get());
  // An IngressBatch holds up to a gateway loop's iteration of client frames (each up to the
  // gateway's frame limit).
  builder.SetMaxReceiveMessageSize(kMaxStreamMessageBytes);
  builder.SetMaxSendMessageSize(kMaxStreamMessageBytes);
  if (options_.max_connection_age_ms > 0) {
    // GOAWAY makes the gateway's channel reconnect and resolve the headless Service again. Its
    // streams end within one age of their own start (IngressStream::Limits::max_age), hence the
    // grace of one age more before the connection is closed under calls in flight.
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS,
                               static_cast<int>(options_.max_connection_age_ms));
    builder.AddChannelArgument(
        GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS,
        static_cast<int>(options_.max_connection_age_ms + options_.max_connection_age_grace_ms));
  }
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || grpc_port_ == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot serve LogicService on ", options_.grpc_address));
  }
  return absl::OkStatus();
}

absl::Status LogicServer::ServeAdminApi() {
  if (options_.admin_api.listen.empty()) return absl::OkStatus();
  absl::StatusOr<std::unique_ptr<AdminApi>> api = AdminApi::Start(
      options_.admin_api, admin_operations_->Routes(), &metrics_->admin_api_requests);
  if (!api.ok()) return api.status();
  admin_api_ = std::move(*api);
  spdlog::info("logic {}: admin API on port {}", options_.logic_id, admin_api_->port());
  return absl::OkStatus();
}

void LogicServer::PostGroupNotice(const std::string& group_id, const std::string& notice_id,
                                  std::string body,
                                  absl::AnyInvocable<void(im::v1::SendResp) &&> done) {
  im::v1::SendRequest request;
  im::v1::Caller* caller = request.mutable_caller();
  caller->set_uid(kSystemUid);
  caller->set_admin(true);
  caller->set_request_id(notice_id);
  im::v1::SendReq* send = request.mutable_req();
  send->set_conv_id(GroupConversation(group_id));
  send->set_client_msg_id(notice_id);
  send->set_type(im::v1::SYSTEM);
  send->set_body(body);
  // The change's webhook is on the bus before the call that made it is answered.
  chat_service_->Send(request, [this, notice_id, body = std::move(body),
                                done = std::move(done)](im::v1::SendResp resp) mutable {
    if (resp.status().code() != im::v1::OK) return std::move(done)(std::move(resp));
    const im::v1::SendResp posted = resp;
    webhooks_->GroupChanged(body, notice_id, posted,
                            [done = std::move(done), resp = std::move(resp)]() mutable {
                              std::move(done)(std::move(resp));
                            });
  });
}

LogicServer::~LogicServer() { Shutdown(std::chrono::milliseconds(0)); }

void LogicServer::Shutdown(std::chrono::milliseconds grace) {
  if (shut_down_) return;
  shut_down_ = true;
  // Calls already received keep running (on the executor and the writer, which are still up)
  // until answered or the grace period ends. Then the writer persists what was handed to it, the
  // executor runs what is queued (the pushes of those messages), and the pushes finish.
  // Gateway streams are long-lived: each is told to stop reading and to end once it has answered
  // what it read, naming the last entry read so that the gateway resends the rest elsewhere.
  // No admin call starts from here on; those running finish on the services still up.
  admin_api_.reset();
  if (service_) service_->DrainStreams();
  if (server_) server_->Shutdown(std::chrono::system_clock::now() + grace);
  // Sends still on the loop reach the writer (or are refused) before it stops.
  if (send_loop_) send_loop_->Stop();
  // Logins on the loop are answered (their kicks handed to the pusher) before the pusher drains.
  if (login_loop_) login_loop_->Stop();
  // Sends numbered by now reach the writer before it stops.
  if (send_executor_) send_executor_->Shutdown();
  writer_->Shutdown();
  login_executor_->Shutdown();
  executor_->Shutdown();
  // Presence changes not yet pushed are dropped: watchers see the state when they next subscribe.
  presence_service_->Stop();
  restrictions_->Stop();
  // Group messages published by now are pushed (Kafka's consumers finish their batch; records
  // Kafka has not acknowledged are pushed from here).
  stores_.fanout->Stop();
  // Events published by now are on Kafka (or delivered from here, in process, while it runs).
  webhooks_->Stop();
  pusher_->WaitIdle(std::chrono::milliseconds(options_.push_timeout_ms) + std::chrono::seconds(1));
  if (server_) server_->Wait();
  spdlog::info("logic {}: stopped", options_.logic_id);
}

}  // namespace im::logic
