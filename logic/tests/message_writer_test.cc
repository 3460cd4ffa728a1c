// MessageWriter's answers: where AnswerOn says (the logic loop in the cluster), in one task per
// transaction, and by the writer itself when AnswerOn refuses the task.
#include "logic/conversation/message_writer.h"

#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <atomic>
#include <future>
#include <mutex>
#include <thread>

#include "common/bounded_executor.h"
#include "store/in_memory_message_store.h"

namespace im::logic {
namespace {

class MessageWriterTest : public ::testing::Test {
 protected:
  struct Answered {
    absl::StatusOr<store::AppendOutcome> outcome;
    std::thread::id thread;
  };

  // Writes `count` messages of one conversation as one request batch; waits for every answer.
  std::vector<Answered> WriteAndWait(MessageWriter& writer, int count) {
    std::vector<std::promise<Answered>> answers(count);
    std::vector<MessageWriter::Write> writes;
    for (int i = 0; i < count; ++i) {
      std::optional<MessageWriter::Room> room = writer.Reserve();
      EXPECT_TRUE(room.has_value());
      store::NewMessage message;
      message.message.set_conv_id("s:alice:bob");
      message.message.set_seq(static_cast<uint64_t>(i + 1));
      message.message.set_sender("alice");
      message.message.set_client_msg_id("c" + std::to_string(i));
      message.message.set_created_ms(now_ms_);
      message.participants = {"alice", "bob"};
      writes.push_back(MessageWriter::Write{
          std::move(message),
          [&answers, i](absl::StatusOr<store::AppendOutcome> outcome) {
            answers[i].set_value(Answered{std::move(outcome), std::this_thread::get_id()});
          },
          std::move(*room)});
    }
    writer.SubmitMany(std::move(writes));
    std::vector<Answered> answered;
    for (std::promise<Answered>& answer : answers) {
      std::future<Answered> future = answer.get_future();
      EXPECT_EQ(future.wait_for(std::chrono::seconds(5)), std::future_status::ready);
      answered.push_back(future.get());
    }
    return answered;
  }

  MessageWriter::Options OneWriter() {
    MessageWriter::Options options;
    options.writers = 1;
    return options;
  }

  const int64_t now_ms_ = 1'700'000'000'000;
  store::InMemoryMessageStore store_;
  prometheus::Registry registry_;
  LogicMetrics metrics_{registry_};
};

TEST_F(MessageWriterTest, AnswersRunWhereAnswerOnSaysOneTaskPerTransaction) {
  common::BoundedExecutor answering("answers", 1, 100);
  std::promise<std::thread::id> answering_thread;
  ASSERT_TRUE(answering.TrySubmit([&] { answering_thread.set_value(std::this_thread::get_id()); }));
  const std::thread::id answering_id = answering_thread.get_future().get();
  std::atomic<int> tasks{0};
  MessageWriter writer(
      &store_, OneWriter(), [this] { return now_ms_; }, &metrics_,
      [&](absl::AnyInvocable<void() &&> answers) {
        ++tasks;
        return answering.TrySubmit(std::move(answers));
      });
  constexpr int kMessages = 5;
  const std::vector<Answered> answered = WriteAndWait(writer, kMessages);
  for (int i = 0; i < kMessages; ++i) {
    ASSERT_TRUE(answered[i].outcome.ok()) << answered[i].outcome.status();
    EXPECT_TRUE(answered[i].outcome->inserted);
    EXPECT_EQ(answered[i].outcome->stored.seq(), static_cast<uint64_t>(i + 1));
    EXPECT_EQ(answered[i].thread, answering_id);
  }
  // One request batch, queued together: one writer takes it in one or (woken early) a few
  // transactions, each answered by one task.
  EXPECT_GE(tasks.load(), 1);
  EXPECT_LE(tasks.load(), kMessages);
  writer.Shutdown();
  answering.Shutdown();
}

TEST_F(MessageWriterTest, AnswersOfARefusedTaskAreRunByTheWriter) {
  std::atomic<int> refused{0};
  MessageWriter writer(
      &store_, OneWriter(), [this] { return now_ms_; }, &metrics_,
      [&](absl::AnyInvocable<void() &&>) {
        ++refused;
        return false;  // the task is destroyed without running
      });
  const std::vector<Answered> answered = WriteAndWait(writer, 3);
  EXPECT_GE(refused.load(), 1);
  for (const Answered& answer : answered) {
    ASSERT_TRUE(answer.outcome.ok()) << answer.outcome.status();
    EXPECT_NE(answer.thread, std::this_thread::get_id()) << "answered by the writer thread";
  }
  writer.Shutdown();
}

}  // namespace
}  // namespace im::logic
