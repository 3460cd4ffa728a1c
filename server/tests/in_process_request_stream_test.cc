// InProcessRequestStream on a real libuv loop, with a dispatch the test controls: a flush hands
// the loop's requests over as one batch, answers come back on the loop, and every request is
// answered exactly once even when logic answers late, too many wait, or the stream closes.
#include "server/in_process_request_stream.h"

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "common/loop_task_queue.h"
#include "prometheus/registry.h"

namespace im::server {
namespace {

using Respond = logic::RequestDispatcher::Respond;
using namespace std::chrono_literals;

// A sync request (frame id `frame_id`); any request type would do.
im::v1::Frame SyncRequest(uint64_t frame_id) {
  im::v1::Frame frame;
  frame.set_id(frame_id);
  frame.mutable_sync_req()->set_conv_id("s:alice:bob");
  return frame;
}

// The answer logic gives: a SyncResp with the request's frame id.
im::v1::Frame SyncAnswer(uint64_t frame_id) {
  im::v1::Frame frame;
  frame.set_id(frame_id);
  frame.mutable_sync_resp()->mutable_status()->set_code(im::v1::OK);
  return frame;
}

class InProcessRequestStreamTest : public ::testing::Test {
 protected:
  InProcessRequestStreamTest() : metrics_(registry_) {
    uv_loop_init(&loop_);
    tasks_ = std::make_unique<common::LoopTaskQueue>(&loop_, 1024);
    tasks_->Start();
  }
  ~InProcessRequestStreamTest() override {
    if (stream_) stream_->Close();
    tasks_->Close([] {});
    uv_run(&loop_, UV_RUN_DEFAULT);
    stream_.reset();
    uv_loop_close(&loop_);
  }

  // A stream whose dispatch keeps every batch's responders in held_ (logic answers when the test
  // says).
  void Open(gateway::RequestStream::Options options) {
    stream_ = std::make_unique<InProcessRequestStream>(
        &loop_,
        [this](std::vector<im::v1::Ingress> batch,
               const std::function<Respond(uint64_t)>& respond_to) {
          batches_.push_back(batch.size());
          for (const im::v1::Ingress& entry : batch) {
            held_.emplace(entry.request().id(), respond_to(entry.id()));
            EXPECT_GT(entry.deadline_ms(), 0);
          }
        },
        options, &metrics_,
        [this](absl::AnyInvocable<void() &&> task) { return tasks_->Post(std::move(task)); });
    stream_->Start();
  }
  void Submit(uint64_t frame_id) {
    stream_->Submit(im::v1::Caller(), SyncRequest(frame_id),
                    [this, frame_id](std::optional<im::v1::Frame> answer) {
                      answers_[frame_id].push_back(std::move(answer));
                    });
  }
  // Logic answers frame `frame_id` (from this thread, as a logic thread would).
  void Answer(uint64_t frame_id) {
    auto it = held_.find(frame_id);
    ASSERT_NE(it, held_.end());
    std::move(it->second)(SyncAnswer(frame_id));
    held_.erase(it);
  }
  // Runs the loop until `done` or `timeout`.
  bool RunUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout = 2s) {
    const auto give_up = std::chrono::steady_clock::now() + timeout;
    while (!done()) {
      if (std::chrono::steady_clock::now() >= give_up) return false;
      uv_run(&loop_, UV_RUN_NOWAIT);
      std::this_thread::sleep_for(1ms);
    }
    return true;
  }
  im::v1::Code CodeOf(uint64_t frame_id) {
    const std::optional<im::v1::Frame>& answer = answers_.at(frame_id).front();
    return answer ? answer->sync_resp().status().code() : im::v1::UNKNOWN;
  }

  prometheus::Registry registry_;
  gateway::GatewayMetrics metrics_;
  uv_loop_t loop_;
  std::unique_ptr<common::LoopTaskQueue> tasks_;
  std::unique_ptr<InProcessRequestStream> stream_;
  std::vector<size_t> batches_;
  std::map<uint64_t, Respond> held_;                                       // by frame id
  std::map<uint64_t, std::vector<std::optional<im::v1::Frame>>> answers_;  // by frame id
};

TEST_F(InProcessRequestStreamTest, AFlushHandsOverOneBatchAndAnswersComeBackOnTheLoop) {
  Open({});
  for (uint64_t id = 1; id <= 3; ++id) Submit(id);
  EXPECT_TRUE(batches_.empty()) << "handed over before the flush";
  stream_->Flush();
  ASSERT_EQ(batches_, std::vector<size_t>{3});
  EXPECT_EQ(stream_->waiting(), 3u);
  for (uint64_t id = 1; id <= 3; ++id) Answer(id);
  EXPECT_TRUE(answers_.empty()) << "answered off the loop";
  ASSERT_TRUE(RunUntil([&] { return answers_.size() == 3; }));
  for (uint64_t id = 1; id <= 3; ++id) {
    ASSERT_EQ(answers_[id].size(), 1u);
    EXPECT_EQ(CodeOf(id), im::v1::OK);
  }
  EXPECT_EQ(stream_->waiting(), 0u);
}

TEST_F(InProcessRequestStreamTest, ARequestLogicDoesNotAnswerInTimeIsAnsweredDeadlineExceededOnce) {
  gateway::RequestStream::Options options;
  options.timeout = 50ms;
  Open(options);
  Submit(1);
  stream_->Flush();
  ASSERT_TRUE(RunUntil([&] { return answers_.count(1) > 0; }));
  EXPECT_EQ(CodeOf(1), im::v1::DEADLINE_EXCEEDED);
  // Logic's late answer is dropped: still one answer.
  Answer(1);
  RunUntil([] { return false; }, 100ms);
  EXPECT_EQ(answers_[1].size(), 1u);
}

TEST_F(InProcessRequestStreamTest, PastMaxWaitingARequestIsRefusedAtOnce) {
  gateway::RequestStream::Options options;
  options.max_waiting = 2;
  Open(options);
  for (uint64_t id = 1; id <= 3; ++id) Submit(id);
  ASSERT_EQ(answers_.count(3), 1u) << "the third was not refused at once";
  EXPECT_EQ(CodeOf(3), im::v1::RESOURCE_EXHAUSTED);
  EXPECT_GT(answers_[3].front()->sync_resp().status().retry_after_ms(), 0u);
  stream_->Flush();
  EXPECT_EQ(batches_, std::vector<size_t>{2});
}

TEST_F(InProcessRequestStreamTest, CloseAnswersWhatWaitsUnavailableAndDropsLaterAnswers) {
  Open({});
  Submit(1);
  Submit(2);
  stream_->Flush();
  Submit(3);  // not handed over yet
  stream_->Close();
  for (uint64_t id = 1; id <= 3; ++id) {
    ASSERT_EQ(answers_[id].size(), 1u) << id;
    EXPECT_EQ(CodeOf(id), im::v1::UNAVAILABLE) << id;
  }
  Answer(1);  // logic answers after the close: nothing more reaches the caller
  Submit(4);  // and a request after it is refused
  EXPECT_EQ(CodeOf(4), im::v1::UNAVAILABLE);
  RunUntil([] { return false; }, 50ms);
  EXPECT_EQ(answers_[1].size(), 1u);
}

}  // namespace
}  // namespace im::server
