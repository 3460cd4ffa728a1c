#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <memory>

#include "logic/conversation/chat_service.h"
#include "logic/delivery/gateway_pusher.h"
#include "logic/group/group_service.h"
#include "logic/session/session_service.h"
#include "prometheus/registry.h"
#include "store/in_memory_group_store.h"
#include "store/in_memory_member_list_cache.h"
#include "store/in_memory_message_store.h"
#include "store/in_memory_restriction_store.h"
#include "store/in_memory_seq_allocator.h"
#include "store/in_memory_session_registry.h"
#include "store/in_memory_ttl_map.h"

namespace im::logic::testing {

inline constexpr char kSecret[] = "logic-test-secret-0123456789";
inline constexpr int64_t kStartMs = 1'800'000'000'000;

// A FanoutBus that keeps what is published, for tests to look at.
class RecordingFanoutBus final : public FanoutBus {
 public:
  absl::Status Start(Deliver) override { return absl::OkStatus(); }
  void Publish(const im::v1::FanoutRecord& record, FanoutLane lane,
               HandedOver handed_over) override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      published_.emplace_back(record, lane);
    }
    if (handed_over) handed_over();
  }
  void Stop() override {}
  std::vector<std::pair<im::v1::FanoutRecord, FanoutLane>> published() {
    std::lock_guard<std::mutex> lock(mutex_);
    return published_;
  }

 private:
  std::mutex mutex_;
  std::vector<std::pair<im::v1::FanoutRecord, FanoutLane>> published_;
};

// The logic services on in-process backends and a fake clock. No gateway is registered, so pushes
// find nowhere to go (the e2e tests cover them).
class LogicFixture : public ::testing::Test {
 protected:
  LogicFixture() {
    options_.token_secret = kSecret;
    auto clock = [this] { return now_ms_.load(); };
    sessions_ = std::make_unique<store::InMemorySessionRegistry>(60'000, clock);
    messages_ = std::make_unique<store::InMemoryMessageStore>();
    seqs_ = std::make_unique<store::InMemorySeqAllocator>(
        [this](std::string_view conv_id) { return messages_->MaxSeq(conv_id); });
    gateways_ = std::make_unique<store::InMemoryTtlMap>(clock);
    dedup_ = std::make_unique<store::InMemoryTtlMap>(clock);
    resumes_ = std::make_unique<store::InMemoryTtlMap>(clock);
    ledger_ = std::make_unique<store::ComposedSendLedger>(dedup_.get(), seqs_.get());
    metrics_ = std::make_unique<LogicMetrics>(registry_);
    executor_ = std::make_unique<common::BoundedExecutor>("test", 2, 1000);
    writer_ = std::make_unique<MessageWriter>(messages_.get(), MessageWriter::Options{}, clock,
                                              metrics_.get());
    pusher_ = std::make_unique<GatewayPusher>(gateways_.get(), sessions_.get(), executor_.get(),
                                              std::chrono::milliseconds(500),
                                              std::chrono::seconds(30), metrics_.get());
    recipients_ =
        std::make_unique<RecipientLookup>(/*loop=*/nullptr, sessions_.get(), metrics_.get());
    msg_ids_ = std::make_unique<MsgIdGenerator>(1, clock);
    groups_ = std::make_unique<store::InMemoryGroupStore>();
    member_cache_ = std::make_unique<store::InMemoryMemberListCache>();
    member_lists_ =
        std::make_unique<MemberLists>(groups_.get(), member_cache_.get(), 100, metrics_.get());
    group_service_ = std::make_unique<GroupService>(options_, groups_.get(), messages_.get(),
                                                    member_lists_.get(), msg_ids_.get(), clock);
    restriction_store_ = std::make_unique<store::InMemoryRestrictionStore>();
    // Not started: what a test puts is in force at once, and nothing reloads behind its back.
    restrictions_ = std::make_unique<Restrictions>(restriction_store_.get(), clock,
                                                   std::chrono::milliseconds(1'000));
    session_service_ =
        std::make_unique<SessionService>(options_, sessions_.get(), pusher_.get(), clock,
                                         SessionService::DevicesChanged{}, restrictions_.get());
    chat_ = MakeChatService(/*sole_writer_since_ms=*/0);
  }

  // The service as a restarted node's, on the same stores; the one it replaces lives on until the
  // executor has stopped (its deliveries may still run).
  void RestartChatService(int64_t sole_writer_since_ms) {
    replaced_chats_.push_back(std::exchange(chat_, MakeChatService(sole_writer_since_ms)));
  }

  // A ChatService on the fixture's stores (0: they may have other writers, as a cluster's do).
  std::unique_ptr<ChatService> MakeChatService(int64_t sole_writer_since_ms) {
    return std::make_unique<ChatService>(
        options_,
        ChatDependencies{recipients_.get(), seqs_.get(), messages_.get(), dedup_.get(),
                         resumes_.get(), ledger_.get(), writer_.get(), pusher_.get(),
                         msg_ids_.get(), executor_.get(), member_lists_.get(), &fanout_,
                         metrics_.get(),
                         /*loop=*/nullptr, sole_writer_since_ms, restrictions_.get()},
        [this] { return now_ms_.load(); });
  }

  ~LogicFixture() override {
    writer_->Shutdown();
    executor_->Shutdown();
  }

  ChatService* Target(ChatService*) { return chat_.get(); }
  GroupService* Target(GroupService*) { return group_service_.get(); }

  // Runs a ChatService or GroupService method and waits for its answer.
  template <typename Service, typename Response, typename Request>
  Response Call(void (Service::*method)(const Request&, absl::AnyInvocable<void(Response) &&>),
                const Request& request) {
    Service* service = Target(static_cast<Service*>(nullptr));
    std::promise<Response> answer;
    std::future<Response> future = answer.get_future();
    (service->*method)(request, [&answer](Response r) { answer.set_value(std::move(r)); });
    EXPECT_EQ(future.wait_for(std::chrono::seconds(10)), std::future_status::ready);
    return future.get();
  }

  static im::v1::Caller CallerOf(const std::string& uid, uint64_t conn_id = 1) {
    im::v1::Caller caller;
    caller.set_uid(uid);
    caller.set_device("phone");
    caller.set_gateway_id("gw-1");
    caller.set_conn_id(conn_id);
    return caller;
  }

  im::v1::SendResp Send(const std::string& from, const std::string& to,
                        const std::string& client_msg_id, const std::string& body = "hi") {
    im::v1::SendRequest request;
    *request.mutable_caller() = CallerOf(from);
    request.mutable_req()->set_to_uid(to);
    request.mutable_req()->set_client_msg_id(client_msg_id);
    request.mutable_req()->set_type(im::v1::TEXT);
    request.mutable_req()->set_body(body);
    return Call(&ChatService::Send, request);
  }

  im::v1::SyncResp Sync(const std::string& uid, const std::string& conv_id, uint64_t after,
                        uint32_t limit = 0) {
    im::v1::SyncRequest request;
    *request.mutable_caller() = CallerOf(uid);
    request.mutable_req()->set_conv_id(conv_id);
    request.mutable_req()->set_after_seq(after);
    request.mutable_req()->set_limit(limit);
    return Call(&ChatService::Sync, request);
  }

  std::atomic<int64_t> now_ms_{kStartMs};
  LogicOptions options_;
  prometheus::Registry registry_;
  std::unique_ptr<store::InMemorySessionRegistry> sessions_;
  std::unique_ptr<store::InMemoryMessageStore> messages_;
  std::unique_ptr<store::InMemorySeqAllocator> seqs_;
  std::unique_ptr<store::InMemoryTtlMap> gateways_;
  std::unique_ptr<store::InMemoryTtlMap> dedup_;
  std::unique_ptr<store::InMemoryTtlMap> resumes_;
  std::unique_ptr<store::ComposedSendLedger> ledger_;
  std::unique_ptr<LogicMetrics> metrics_;
  std::unique_ptr<common::BoundedExecutor> executor_;
  std::unique_ptr<MessageWriter> writer_;
  std::unique_ptr<GatewayPusher> pusher_;
  std::unique_ptr<RecipientLookup> recipients_;
  std::unique_ptr<MsgIdGenerator> msg_ids_;
  std::unique_ptr<store::InMemoryGroupStore> groups_;
  std::unique_ptr<store::InMemoryMemberListCache> member_cache_;
  std::unique_ptr<MemberLists> member_lists_;
  std::unique_ptr<GroupService> group_service_;
  RecordingFanoutBus fanout_;
  std::unique_ptr<store::InMemoryRestrictionStore> restriction_store_;
  std::unique_ptr<Restrictions> restrictions_;
  std::unique_ptr<SessionService> session_service_;
  std::unique_ptr<ChatService> chat_;
  std::vector<std::unique_ptr<ChatService>> replaced_chats_;
};

}  // namespace im::logic::testing
