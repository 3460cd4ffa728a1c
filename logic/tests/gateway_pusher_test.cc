// GatewayPusher against a gateway stand-in (a synchronous GatewayService on a local port): pushes
// travel as batches on one PushStream, in order; a broken stream fails its batches and the next
// one opens another; an older gateway without PushStream gets one Push call per batch.
#include "logic/delivery/gateway_pusher.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "common/bounded_executor.h"
#include "common/clock.h"
#include "im/v1/client.pb.h"
#include "im/v1/gateway.grpc.pb.h"
#include "logic/logic_metrics.h"
#include "store/in_memory_session_registry.h"
#include "store/in_memory_ttl_map.h"

namespace im::logic {
namespace {

using std::chrono::milliseconds;
constexpr milliseconds kWait{5000};

// Records the seq of every push it receives, in arrival order, and answers the connections in
// `unknown` as not held here.
class FakeGateway final : public im::v1::GatewayService::Service {
 public:
  bool has_push_stream = true;
  std::atomic<int> break_stream_at_batch{-1};  // that batch (counted from 0) ends its stream
  bool answer_first_two_crossed = false;       // the second batch is answered before the first
  std::set<uint64_t> unknown;

  grpc::Status PushStream(
      grpc::ServerContext* /*context*/,
      grpc::ServerReaderWriter<im::v1::PushBatchReply, im::v1::PushBatchRequest>* stream) override {
    if (!has_push_stream) return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "older gateway");
    streams++;
    im::v1::PushBatchRequest batch;
    if (answer_first_two_crossed) {
      im::v1::PushBatchRequest first;
      if (!stream->Read(&first) || !stream->Read(&batch)) return grpc::Status::OK;
      batches += 2;
      im::v1::PushBatchReply first_reply = Record(first);
      first_reply.set_id(first.id());
      im::v1::PushBatchReply second_reply = Record(batch);
      second_reply.set_id(batch.id());
      if (!stream->Write(second_reply) || !stream->Write(first_reply)) return grpc::Status::OK;
    }
    while (stream->Read(&batch)) {
      if (batches++ == break_stream_at_batch) {
        return grpc::Status(grpc::StatusCode::UNAVAILABLE, "gateway restarting");
      }
      im::v1::PushBatchReply reply = Record(batch);
      reply.set_id(batch.id());
      if (!stream->Write(reply)) break;
    }
    return grpc::Status::OK;
  }

  grpc::Status Push(grpc::ServerContext* /*context*/, const im::v1::PushBatchRequest* batch,
                    im::v1::PushBatchReply* reply) override {
    push_calls++;
    batches++;
    *reply = Record(*batch);
    return grpc::Status::OK;
  }

  // Waits until `count` pushes arrived; returns their seqs in arrival order.
  std::vector<uint64_t> WaitForSeqs(size_t count) {
    std::unique_lock<std::mutex> lock(mutex_);
    arrived_.wait_for(lock, kWait, [&] { return seqs_.size() >= count; });
    return seqs_;
  }

  // Waits until `count` kicks arrived; returns (conn id, reason) in arrival order.
  std::vector<std::pair<uint64_t, im::v1::Kick::Reason>> WaitForKicks(size_t count) {
    std::unique_lock<std::mutex> lock(mutex_);
    arrived_.wait_for(lock, kWait, [&] { return kicked_.size() >= count; });
    return kicked_;
  }

  std::atomic<int> streams{0};
  std::atomic<int> push_calls{0};
  std::atomic<int> batches{0};

 private:
  im::v1::PushBatchReply Record(const im::v1::PushBatchRequest& batch) {
    im::v1::PushBatchReply reply;
    std::lock_guard<std::mutex> lock(mutex_);
    for (const im::v1::PushRequest& push : batch.pushes()) {
      im::v1::Frame frame;
      EXPECT_TRUE(frame.ParseFromString(push.frame()));
      if (frame.has_kick()) {
        EXPECT_TRUE(push.close_after()) << "a kick that leaves the connection open";
        for (uint64_t id : push.conn_ids()) kicked_.push_back({id, frame.kick().reason()});
      } else {
        EXPECT_FALSE(push.close_after());
        seqs_.push_back(frame.message_push().messages(0).seq());
      }
      im::v1::PushReply* push_reply = reply.add_replies();
      for (uint64_t id : push.conn_ids()) {
        if (unknown.count(id) > 0) {
          push_reply->add_unknown_conn_ids(id);
        } else {
          push_reply->set_delivered(push_reply->delivered() + 1);
        }
      }
    }
    arrived_.notify_all();
    return reply;
  }

  std::mutex mutex_;
  std::condition_variable arrived_;
  std::vector<uint64_t> seqs_;
  std::vector<std::pair<uint64_t, im::v1::Kick::Reason>> kicked_;
};

// gRPC 1.51 (Debian 12) tears down the shared completion queue of the callback API when the last
// channel that used it goes, and doing so while another test builds the next one double-frees it
// (ASan, about one run in 40). A process keeps its channels for life; this binary keeps one too.
class CallbackQueueKeeper final : public ::testing::Environment {
 public:
  void SetUp() override {
    channel_ = grpc::CreateChannel("127.0.0.1:1", grpc::InsecureChannelCredentials());
    auto stub = im::v1::GatewayService::NewStub(channel_);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + milliseconds(100));
    im::v1::KickRequest request;
    im::v1::KickReply reply;
    std::mutex mutex;
    std::condition_variable ended_cv;
    bool ended = false;
    stub->async()->Kick(&context, &request, &reply, [&](grpc::Status) {
      std::lock_guard<std::mutex> lock(mutex);
      ended = true;
      ended_cv.notify_all();
    });
    std::unique_lock<std::mutex> lock(mutex);
    ended_cv.wait(lock, [&] { return ended; });
  }

 private:
  std::shared_ptr<grpc::Channel> channel_;
};
const auto* const kCallbackQueueKeeper =
    ::testing::AddGlobalTestEnvironment(new CallbackQueueKeeper);

class GatewayPusherTest : public ::testing::Test {
 protected:
  void StartGateway() {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&gateway_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    pusher_ = std::make_unique<GatewayPusher>(&directory_, &sessions_, &executor_, kWait,
                                              milliseconds(60'000), &metrics_);
    ASSERT_TRUE(pusher_->RegisterGateway("gw", "127.0.0.1:" + std::to_string(port)).ok());
  }

  void TearDown() override {
    pusher_.reset();
    if (!server_) return;
    server_->Shutdown(std::chrono::system_clock::now() + milliseconds(500));
    server_->Wait();
    server_.reset();
  }

  static std::shared_ptr<const std::string> PushOf(uint64_t seq) {
    im::v1::Frame frame;
    frame.mutable_message_push()->add_messages()->set_seq(seq);
    return std::make_shared<const std::string>(frame.SerializeAsString());
  }
  static PushTarget Target(uint64_t conn_id) {
    return PushTarget{"u" + std::to_string(conn_id), store::Session{"phone", "gw", conn_id, 0, ""}};
  }

  // Pushes seqs first..last to connection 1, each with a `done` counted in `done_count`.
  void PushSeqs(uint64_t first, uint64_t last) {
    for (uint64_t seq = first; seq <= last; ++seq) {
      pusher_->Push(PushOf(seq), {Target(1)}, [this] {
        std::lock_guard<std::mutex> lock(done_mutex_);
        ++done_count_;
        done_cv_.notify_all();
      });
    }
  }
  bool WaitDone(int count) {
    std::unique_lock<std::mutex> lock(done_mutex_);
    return done_cv_.wait_for(lock, kWait, [&] { return done_count_ >= count; });
  }

  FakeGateway gateway_;
  std::unique_ptr<grpc::Server> server_;
  store::InMemoryTtlMap directory_{common::UnixMillis};
  store::InMemorySessionRegistry sessions_{60'000, common::UnixMillis};
  common::BoundedExecutor executor_{"test", 1, 100};
  prometheus::Registry registry_;
  LogicMetrics metrics_{registry_};
  std::unique_ptr<GatewayPusher> pusher_;
  std::mutex done_mutex_;
  std::condition_variable done_cv_;
  int done_count_ = 0;
};

TEST_F(GatewayPusherTest, PushesTravelInOrderOnOneStream) {
  StartGateway();
  constexpr uint64_t kPushes = 500;
  PushSeqs(1, kPushes);
  ASSERT_TRUE(WaitDone(kPushes)) << "every push's done runs once its batch is answered";
  std::vector<uint64_t> seqs = gateway_.WaitForSeqs(kPushes);
  ASSERT_EQ(seqs.size(), kPushes);
  for (uint64_t i = 0; i < kPushes; ++i) ASSERT_EQ(seqs[i], i + 1) << "pushes overtook";
  EXPECT_EQ(gateway_.streams.load(), 1);
  EXPECT_EQ(gateway_.push_calls.load(), 0);
  EXPECT_LT(gateway_.batches.load(), static_cast<int>(kPushes)) << "pushes were batched";
}

// A gateway answers a batch when its last loop is done with it, so answers may cross.
TEST_F(GatewayPusherTest, AnswersThatCrossSettleTheirOwnBatches) {
  gateway_.answer_first_two_crossed = true;
  StartGateway();
  PushSeqs(1, 1);  // the first batch leaves alone; the rest follow once it is written
  PushSeqs(2, 40);
  ASSERT_TRUE(WaitDone(40)) << "a batch answered out of turn was never settled";
  std::vector<uint64_t> seqs = gateway_.WaitForSeqs(40);
  ASSERT_EQ(seqs.size(), 40u);
  for (uint64_t i = 0; i < 40; ++i) EXPECT_EQ(seqs[i], i + 1);
  EXPECT_EQ(gateway_.streams.load(), 1);
}

TEST_F(GatewayPusherTest, ADisownedConnectionLosesItsSession) {
  StartGateway();
  ASSERT_TRUE(sessions_.Register("u7", store::Session{"phone", "gw", 7, 0, ""}).ok());
  gateway_.unknown.insert(7);
  pusher_->Push(PushOf(1), {Target(7)});
  for (int i = 0; i < 100 && !sessions_.Lookup("u7")->empty(); ++i) {
    std::this_thread::sleep_for(milliseconds(20));
  }
  EXPECT_TRUE(sessions_.Lookup("u7")->empty());
}

// A kick is a push of a Kick frame with close_after, on the same stream and in order with the
// pushes. A kicked connection the gateway does not hold was replaced already: its session (the
// device's new one, or none) is left alone, unlike a push's disowned connection.
TEST_F(GatewayPusherTest, KicksTravelOnThePushStreamInOrder) {
  StartGateway();
  ASSERT_TRUE(sessions_.Register("u8", store::Session{"phone", "gw", 8, 0, ""}).ok());
  gateway_.unknown.insert(8);
  PushSeqs(1, 1);
  pusher_->Kick(Target(8), im::v1::Kick::LOGGED_IN_ELSEWHERE, "elsewhere");
  pusher_->Kick(Target(9), im::v1::Kick::TOO_MANY_DEVICES, "too many");
  PushSeqs(2, 2);
  ASSERT_TRUE(WaitDone(2));
  EXPECT_EQ(gateway_.WaitForSeqs(2), (std::vector<uint64_t>{1, 2}));
  const auto kicks = gateway_.WaitForKicks(2);
  ASSERT_EQ(kicks.size(), 2u);
  EXPECT_EQ(kicks[0], std::make_pair(uint64_t{8}, im::v1::Kick::LOGGED_IN_ELSEWHERE));
  EXPECT_EQ(kicks[1], std::make_pair(uint64_t{9}, im::v1::Kick::TOO_MANY_DEVICES));
  EXPECT_EQ(gateway_.streams.load(), 1);
  EXPECT_EQ(metrics_.kicks.Value(), 2);
  // The kick's batch was settled before the last push's: a drop would have been queued by now.
  executor_.Shutdown();
  EXPECT_EQ(sessions_.Lookup("u8")->size(), 1u);
}

TEST_F(GatewayPusherTest, ABrokenStreamFailsItsBatchAndTheNextPushOpensAnother) {
  StartGateway();
  gateway_.break_stream_at_batch = 0;  // the first batch never gets an answer
  PushSeqs(1, 1);
  ASSERT_TRUE(WaitDone(1)) << "the failed batch's done runs too";
  PushSeqs(2, 3);
  ASSERT_TRUE(WaitDone(3));
  // The broken stream's batch was never taken; the next two arrive on a new stream.
  EXPECT_EQ(gateway_.WaitForSeqs(2), (std::vector<uint64_t>{2, 3}));
  EXPECT_EQ(gateway_.streams.load(), 2);
}

TEST_F(GatewayPusherTest, AGatewayWithoutPushStreamGetsPushCalls) {
  gateway_.has_push_stream = false;
  StartGateway();
  constexpr uint64_t kPushes = 50;
  PushSeqs(1, kPushes);
  ASSERT_TRUE(WaitDone(kPushes));
  std::vector<uint64_t> seqs = gateway_.WaitForSeqs(kPushes);
  std::sort(seqs.begin(), seqs.end());
  ASSERT_EQ(seqs.size(), kPushes) << "nothing lost in the switch to Push calls";
  for (uint64_t i = 0; i < kPushes; ++i) EXPECT_EQ(seqs[i], i + 1);
  EXPECT_GT(gateway_.push_calls.load(), 0);
}

}  // namespace
}  // namespace im::logic
