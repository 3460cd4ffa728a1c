// LogicService.Stream through real gRPC, on a LogicServer with in-process backends: a batch
// mixing good and bad requests, the per-stream in-flight bound, and how a draining node ends it.
#include "logic/ingress/ingress_stream.h"

#include <atomic>
#include <chrono>
#include <future>
#include <map>
#include <memory>
#include <set>
#include <thread>

#include "common/logic_stream_trailer.h"
#include "common/retry_hint.h"
#include "common/token.h"
#include "logic/backends/in_process_stores.h"
#include "logic/tests/logic_node_fixture.h"

namespace im::logic {
namespace {

using testing::Stream;

class IngressStreamTest : public testing::LogicNodeFixture {
 protected:
  void StartServer() {
    LogicNodeFixture::StartServer(InProcessStores(options_, &metrics_, common::UnixMillis));
  }

  // Reads `stream` to its end, which must bring no more answers, and returns its status; the
  // trailer must name `last_read` as the last entry logic read.
  static grpc::Status EndOfADrainedStream(Stream& stream, grpc::ClientContext& context,
                                          const std::string& last_read) {
    im::v1::EgressBatch more;
    EXPECT_FALSE(stream.Read(&more)) << "the stream ends without further answers";
    const grpc::Status status = stream.Finish();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
    const auto& trailers = context.GetServerTrailingMetadata();
    const auto found = trailers.find(common::kLastReadIdTrailer);
    EXPECT_NE(found, trailers.end()) << "no " << common::kLastReadIdTrailer << " trailer";
    if (found != trailers.end()) {
      EXPECT_EQ(std::string(found->second.data(), found->second.size()), last_read);
    }
    return status;
  }
};

TEST_F(IngressStreamTest, ABatchMixingGoodAndBadRequestsAnswersEachWithItsOwnStatus) {
  StartServer();
  grpc::ClientContext context;
  std::unique_ptr<Stream> stream = stub_->Stream(&context);
  im::v1::IngressBatch batch;
  *batch.add_entries() = Entry(1, "amy", SendTo("bob", "ok-1"));
  *batch.add_entries() = Entry(2, "amy", SendTo("bob", ""));  // no client_msg_id
  im::v1::Frame foreign;
  foreign.mutable_sync_req()->set_conv_id("s:bob:cat");  // not amy's conversation
  *batch.add_entries() = Entry(3, "amy", foreign);
  im::v1::Frame push;
  push.mutable_message_push();  // not a request
  *batch.add_entries() = Entry(4, "amy", push);
  *batch.add_entries() = Entry(5, "amy", SendTo("bob", "late"), common::UnixMillis() - 1);
  im::v1::Frame ack;
  ack.mutable_ack_req()->add_cursors()->set_conv_id("s:amy:bob");
  *batch.add_entries() = Entry(6, "amy", ack);
  *batch.add_entries() = Entry(7, "amy", SendTo("bob", "ok-2"));
  ASSERT_TRUE(stream->Write(batch));

  std::map<uint64_t, im::v1::Egress> answers = ReadAnswers(*stream, 7);
  ASSERT_EQ(answers.size(), 7u);
  for (auto& [id, egress] : answers) {
    if (egress.has_response()) {
      EXPECT_EQ(egress.response().id(), id * 10) << id;
    }
  }
  EXPECT_EQ(answers[1].response().send_resp().status().code(), im::v1::OK);
  EXPECT_EQ(answers[1].response().send_resp().seq(), 1u);
  EXPECT_EQ(answers[2].response().send_resp().status().code(), im::v1::INVALID_ARGUMENT);
  EXPECT_EQ(answers[3].response().sync_resp().status().code(), im::v1::PERMISSION_DENIED);
  EXPECT_EQ(answers[4].response().error().code(), im::v1::UNEXPECTED_FRAME);
  EXPECT_EQ(answers[5].response().send_resp().status().code(), im::v1::DEADLINE_EXCEEDED);
  EXPECT_EQ(answers[5].response().send_resp().status().retry_after_ms(), 0u)
      << "no hint for a caller who gave up";
  EXPECT_FALSE(answers[6].has_response()) << "an ack has no response frame";
  EXPECT_EQ(answers[7].response().send_resp().status().code(), im::v1::OK);
  EXPECT_EQ(metrics_.expired_on_arrival.Value(), 1) << "counted by stage";
  EXPECT_EQ(answers[7].response().send_resp().seq(), 2u) << "the expired send took no seq";
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(IngressStreamTest, ALoginOnTheStreamRegistersTheSessionOfItsConnection) {
  StartServer();
  grpc::ClientContext context;
  std::unique_ptr<Stream> stream = stub_->Stream(&context);
  auto login_as = [](const std::string& token) {
    im::v1::Frame frame;
    frame.mutable_login_req()->set_token(token);
    frame.mutable_login_req()->set_device("phone");
    return frame;
  };
  const int64_t exp_sec = common::UnixMillis() / 1000 + 60;
  im::v1::IngressBatch batch;
  // A login's caller has no uid yet: logic takes it from the token.
  *batch.add_entries() =
      Entry(1, "", login_as(common::SignToken({"amy", exp_sec, ""}, options_.token_secret)));
  *batch.add_entries() = Entry(2, "", login_as("not-a-token"));
  ASSERT_TRUE(stream->Write(batch));
  std::map<uint64_t, im::v1::Egress> answers = ReadAnswers(*stream, 2);
  ASSERT_EQ(answers.size(), 2u);
  const im::v1::LoginResp& ok = answers[1].response().login_resp();
  EXPECT_EQ(ok.status().code(), im::v1::OK) << ok.status().message();
  EXPECT_EQ(ok.uid(), "amy");
  EXPECT_EQ(ok.session_id(), "gw-1-7") << "the session is the caller's connection";
  EXPECT_EQ(answers[2].response().login_resp().status().code(), im::v1::TOKEN_INVALID);
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(IngressStreamTest, AStreamAtItsInFlightBoundReadsOnAsAnswersMakeRoom) {
  options_.stream_max_in_flight = 1;
  StartServer();
  grpc::ClientContext context;
  std::unique_ptr<Stream> stream = stub_->Stream(&context);
  constexpr int kBatches = 20;
  for (int i = 1; i <= kBatches; ++i) {
    im::v1::IngressBatch batch;
    *batch.add_entries() = Entry(i, "amy", SendTo("bob", "m-" + std::to_string(i)));
    ASSERT_TRUE(stream->Write(batch));
  }
  std::map<uint64_t, im::v1::Egress> answers = ReadAnswers(*stream, kBatches);
  ASSERT_EQ(answers.size(), static_cast<size_t>(kBatches));
  for (auto& [id, egress] : answers) {
    EXPECT_EQ(egress.response().send_resp().status().code(), im::v1::OK) << id;
  }
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
}

// One connection's sends travel in the order the gateway wrote them, across batches too: the
// stream dispatches a batch before it reads the next, so a later batch never takes seqs ahead of
// an earlier one (the gateway writes one batch per loop iteration, so a client's pipelined sends
// often span batches).
TEST_F(IngressStreamTest, SendsOfSuccessiveBatchesTakeSeqsInTheOrderWritten) {
  StartServer();
  grpc::ClientContext context;
  std::unique_ptr<Stream> stream = stub_->Stream(&context);
  constexpr uint64_t kBatches = 400;
  for (uint64_t id = 1; id <= kBatches; ++id) {
    im::v1::IngressBatch batch;
    *batch.add_entries() = Entry(id, "amy", SendTo("bob", "in-order-" + std::to_string(id)));
    ASSERT_TRUE(stream->Write(batch));
  }
  std::map<uint64_t, im::v1::Egress> answers = ReadAnswers(*stream, kBatches);
  ASSERT_EQ(answers.size(), kBatches);
  for (auto& [id, egress] : answers) {
    const im::v1::SendResp& sent = egress.response().send_resp();
    ASSERT_EQ(sent.status().code(), im::v1::OK) << id;
    EXPECT_EQ(sent.seq(), id) << "entry " << id << " was numbered out of the order written";
  }
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(IngressStreamTest, ADrainingNodeEndsTheStreamNamingTheLastEntryItRead) {
  StartServer();
  grpc::ClientContext context;
  std::unique_ptr<Stream> stream = stub_->Stream(&context);
  im::v1::IngressBatch batch;
  *batch.add_entries() = Entry(1, "amy", SendTo("bob", "before-drain"));
  *batch.add_entries() = Entry(2, "amy", SendTo("bob", "also-before"));
  ASSERT_TRUE(stream->Write(batch));
  ASSERT_EQ(ReadAnswers(*stream, 2).size(), 2u);

  std::thread shutdown([this] { server_->Shutdown(std::chrono::milliseconds(3000)); });
  const grpc::Status status = EndOfADrainedStream(*stream, context, "2");
  shutdown.join();
  EXPECT_NE(status.error_message().find("shutting down"), std::string::npos)
      << status.error_message();
}

// logic.max_connection_age_ms: a stream ends gracefully within its age, after answering what it
// read, with the trailer that lets the gateway resend the rest on the next stream it opens.
TEST_F(IngressStreamTest, AStreamPastItsMaxAgeEndsGracefullyForTheGatewayToReopen) {
  options_.max_connection_age_ms = 500;
  options_.max_connection_age_grace_ms = 10'000;
  StartServer();
  grpc::ClientContext context;
  std::unique_ptr<Stream> stream = stub_->Stream(&context);
  im::v1::IngressBatch batch;
  *batch.add_entries() = Entry(1, "amy", SendTo("bob", "young"));
  ASSERT_TRUE(stream->Write(batch));
  ASSERT_EQ(ReadAnswers(*stream, 1).size(), 1u);

  const auto opened = std::chrono::steady_clock::now();
  const grpc::Status status = EndOfADrainedStream(*stream, context, "1");
  EXPECT_LT(std::chrono::steady_clock::now() - opened, std::chrono::milliseconds(2'000));
  EXPECT_NE(status.error_message().find("max_connection_age_ms"), std::string::npos)
      << status.error_message();

  // The next stream (on a new connection: the old one was told to go away) serves as before.
  grpc::ClientContext next_context;
  std::unique_ptr<Stream> next = stub_->Stream(&next_context);
  *batch.mutable_entries(0) = Entry(2, "amy", SendTo("bob", "reopened"));
  ASSERT_TRUE(next->Write(batch));
  std::map<uint64_t, im::v1::Egress> answers = ReadAnswers(*next, 1);
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[2].response().send_resp().status().code(), im::v1::OK);
  next->WritesDone();
  next->Finish().IgnoreError();  // OK, or the next age's drain if this machine is slow
}

// Past the writer's queue, sends are refused at once, and each refusal is counted by what was
// full (im_logic_overloaded_total{reason="write_queue_full"}). A refused send took no seq: the
// accepted ones hold 1..n without a hole for readers to wait out.
TEST_F(IngressStreamTest, SendsPastAFullWriteQueueAreRefusedBeforeTakingASeq) {
  options_.write_queue = 1;
  options_.writers = 1;
  StartServer();
  grpc::ClientContext context;
  std::unique_ptr<Stream> stream = stub_->Stream(&context);
  constexpr int kSends = 50;
  im::v1::IngressBatch batch;
  for (int i = 1; i <= kSends; ++i) {
    *batch.add_entries() = Entry(i, "amy", SendTo("bob", "flood-" + std::to_string(i)));
  }
  ASSERT_TRUE(stream->Write(batch));
  std::map<uint64_t, im::v1::Egress> answers = ReadAnswers(*stream, kSends);
  ASSERT_EQ(answers.size(), static_cast<size_t>(kSends));
  int refused = 0;
  std::set<uint64_t> seqs;
  for (auto& [id, egress] : answers) {
    const im::v1::Status& status = egress.response().send_resp().status();
    if (status.code() == im::v1::OK) seqs.insert(egress.response().send_resp().seq());
    if (status.code() == im::v1::RESOURCE_EXHAUSTED) {
      ++refused;
      EXPECT_NE(status.message().find("waiting to be persisted"), std::string::npos) << id;
      EXPECT_EQ(status.retry_after_ms(), common::kOverloadRetryAfterMs) << "a retry hint";
    } else {
      EXPECT_EQ(status.code(), im::v1::OK) << id << ": " << status.ShortDebugString();
    }
  }
  EXPECT_GT(refused, 0) << "a queue of one took " << kSends << " sends of one batch";
  EXPECT_EQ(metrics_.overloaded_write_queue.Value(), refused);
  ASSERT_EQ(seqs.size(), static_cast<size_t>(kSends - refused));
  EXPECT_EQ(*seqs.begin(), 1u);
  EXPECT_EQ(*seqs.rbegin(), seqs.size()) << "a refused send burnt a seq";
  // The next send, once the queue drained, takes the next seq. The writer frees its room just
  // after it answers, so the first tries may still be refused: each refusal must leave the seqs
  // alone, as asserted below.
  im::v1::SendResp resp;
  for (uint64_t id = kSends + 1; id <= kSends + 50; ++id) {
    im::v1::IngressBatch next;
    *next.add_entries() = Entry(id, "amy", SendTo("bob", "after the flood"));
    ASSERT_TRUE(stream->Write(next));
    std::map<uint64_t, im::v1::Egress> after = ReadAnswers(*stream, 1);
    ASSERT_EQ(after.size(), 1u);
    resp = after[id].response().send_resp();
    if (resp.status().code() != im::v1::RESOURCE_EXHAUSTED) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(resp.status().code(), im::v1::OK) << resp.status().ShortDebugString();
  EXPECT_EQ(resp.seq(), seqs.size() + 1) << "a refused send burnt a seq";
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
}

// Session registry whose logins wait at a gate: a login thread held as long as a test likes.
class GatedSessionRegistry : public store::SessionRegistry {
 public:
  explicit GatedSessionRegistry(std::unique_ptr<store::SessionRegistry> inner)
      : inner_(std::move(inner)) {}

  // Blocks until a login is held at the gate.
  void WaitUntilALoginWaits() { entered_.wait(); }
  void Open() {
    if (!open_called_.exchange(true)) open_.set_value();
  }

  std::vector<absl::StatusOr<Registered>> RegisterAndList(
      const std::vector<Registration>& registrations) override {
    if (!signalled_.exchange(true)) entered_promise_.set_value();
    opened_.wait();
    return inner_->RegisterAndList(registrations);
  }
  absl::StatusOr<std::optional<store::Session>> Register(std::string_view uid,
                                                         const store::Session& session) override {
    return inner_->Register(uid, session);
  }
  absl::StatusOr<bool> Unregister(std::string_view uid, std::string_view device,
                                  std::string_view gateway_id, uint64_t conn_id) override {
    return inner_->Unregister(uid, device, gateway_id, conn_id);
  }
  absl::StatusOr<std::vector<store::Session>> Lookup(std::string_view uid) override {
    return inner_->Lookup(uid);
  }
  absl::StatusOr<std::vector<std::vector<store::Session>>> LookupMany(
      const std::vector<std::string>& uids) override {
    return inner_->LookupMany(uids);
  }
  absl::StatusOr<std::vector<int64_t>> LapseInMs(const std::vector<std::string>& uids) override {
    return inner_->LapseInMs(uids);
  }
  absl::StatusOr<std::vector<uint64_t>> Refresh(
      std::string_view gateway_id, const std::vector<store::SessionRef>& sessions) override {
    return inner_->Refresh(gateway_id, sessions);
  }

 private:
  std::unique_ptr<store::SessionRegistry> inner_;
  std::atomic<bool> signalled_{false};
  std::promise<void> entered_promise_;
  std::shared_future<void> entered_ = entered_promise_.get_future().share();
  std::atomic<bool> open_called_{false};
  std::promise<void> open_;
  std::shared_future<void> opened_ = open_.get_future().share();
};

class AdmissionTest : public IngressStreamTest {
 protected:
  // Starts the node with logins held at a gate until the test opens it.
  GatedSessionRegistry* StartWithGatedLogins() {
    LogicStores stores = InProcessStores(options_, &metrics_, common::UnixMillis);
    auto gated = std::make_unique<GatedSessionRegistry>(std::move(stores.sessions));
    gate_ = gated.get();
    stores.sessions = std::move(gated);
    LogicNodeFixture::StartServer(std::move(stores));
    return gate_;
  }
  // A test that failed with the login thread held must still end: the shutdown waits for it.
  void TearDown() override {
    if (gate_ != nullptr) gate_->Open();
    IngressStreamTest::TearDown();
  }
  im::v1::LoginReq LoginAs(const std::string& uid) const {
    im::v1::LoginReq login;
    login.set_token(
        common::SignToken({uid, common::UnixMillis() / 1000 + 60, ""}, options_.token_secret));
    login.set_device("phone");
    return login;
  }
  im::v1::IngressBatch LoginBatch(uint64_t id, const std::string& uid) const {
    im::v1::Frame frame;
    *frame.mutable_login_req() = LoginAs(uid);
    im::v1::IngressBatch batch;
    *batch.add_entries() = Entry(id, "", frame);
    return batch;
  }

  GatedSessionRegistry* gate_ = nullptr;  // owned by the server
};

// Logins have their own threads and queue: while the only login thread is held, sends are served
// as usual; a login past the login queue is refused at once (login_queue_full); and a login that
// waited in that queue longer than the queue-wait interval is refused when its turn comes
// (login_wait) instead of served late. Both refusals carry the retry hint.
TEST_F(AdmissionTest, LoginsAreAdmittedApartFromSendsAndShedWhenTheyWaitedTooLong) {
  options_.login_threads = 1;
  options_.login_queue = 1;
  options_.queue_wait_target_ms = 10;
  options_.queue_wait_interval_ms = 50;
  GatedSessionRegistry* gate = StartWithGatedLogins();
  grpc::ClientContext context;
  std::unique_ptr<Stream> stream = stub_->Stream(&context);
  ASSERT_TRUE(stream->Write(LoginBatch(1, "amy")));
  gate->WaitUntilALoginWaits();                      // the login thread is held
  ASSERT_TRUE(stream->Write(LoginBatch(2, "bob")));  // queued behind it
  ASSERT_TRUE(stream->Write(LoginBatch(3, "cat")));  // past the queue of one
  std::map<uint64_t, im::v1::Egress> refused = ReadAnswers(*stream, 1);
  ASSERT_EQ(refused.count(3), 1u);
  const im::v1::Status& full = refused[3].response().login_resp().status();
  EXPECT_EQ(full.code(), im::v1::RESOURCE_EXHAUSTED);
  EXPECT_NE(full.message().find("login queue is full"), std::string::npos) << full.message();
  EXPECT_EQ(full.retry_after_ms(), common::kOverloadRetryAfterMs);

  // Sends do not wait for logins.
  im::v1::IngressBatch sends;
  for (uint64_t id = 10; id < 15; ++id) {
    *sends.add_entries() =
        Entry(id, "dan", SendTo("eve", "while-logins-wait-" + std::to_string(id)));
  }
  ASSERT_TRUE(stream->Write(sends));
  std::map<uint64_t, im::v1::Egress> sent = ReadAnswers(*stream, 5);
  ASSERT_EQ(sent.size(), 5u);
  for (auto& [id, egress] : sent) {
    EXPECT_EQ(egress.response().send_resp().status().code(), im::v1::OK) << id;
  }

  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // bob's login waits 200 ms
  gate->Open();
  std::map<uint64_t, im::v1::Egress> logins = ReadAnswers(*stream, 2);
  ASSERT_EQ(logins.size(), 2u);
  EXPECT_EQ(logins[1].response().login_resp().status().code(), im::v1::OK);
  const im::v1::Status& shed = logins[2].response().login_resp().status();
  EXPECT_EQ(shed.code(), im::v1::RESOURCE_EXHAUSTED);
  EXPECT_NE(shed.message().find("waited too long"), std::string::npos) << shed.message();
  EXPECT_EQ(shed.retry_after_ms(), common::kOverloadRetryAfterMs);
  EXPECT_EQ(metrics_.overloaded_login_queue.Value(), 1);
  EXPECT_EQ(metrics_.overloaded_login_wait.Value(), 1);
  EXPECT_EQ(metrics_.overloaded_executor.Value(), 0);
  EXPECT_EQ(metrics_.login_wait_seconds.Collect().histogram.sample_count, 2u);
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
}

// A unary call whose deadline passed while it was queued is dropped when its turn comes, before
// it touches a store.
TEST_F(AdmissionTest, AUnaryLoginPastItsDeadlineInTheQueueIsNotServed) {
  options_.login_threads = 1;
  options_.queue_wait_interval_ms = 0;  // only the deadline drops it
  GatedSessionRegistry* gate = StartWithGatedLogins();
  grpc::ClientContext stream_context;
  std::unique_ptr<Stream> stream = stub_->Stream(&stream_context);
  ASSERT_TRUE(stream->Write(LoginBatch(1, "amy")));
  gate->WaitUntilALoginWaits();

  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(100));
  im::v1::LoginRequest request;
  *request.mutable_req() = LoginAs("bob");
  request.set_gateway_id("gw-1");
  request.set_conn_id(8);
  im::v1::LoginReply reply;
  EXPECT_EQ(stub_->Login(&context, request, &reply).error_code(),
            grpc::StatusCode::DEADLINE_EXCEEDED);
  gate->Open();
  EXPECT_EQ(ReadAnswers(*stream, 1)[1].response().login_resp().status().code(), im::v1::OK);
  for (int i = 0; i < 200 && metrics_.expired_in_queue.Value() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(metrics_.expired_in_queue.Value(), 1) << "bob's login was served after its deadline";
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
}

}  // namespace
}  // namespace im::logic
