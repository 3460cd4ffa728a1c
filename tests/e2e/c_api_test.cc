// The C API (sdk/im_client.h) against the real binaries, on the cluster and on the embedded node:
// everything a mobile binding written against that header alone needs works, groups included.
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "sdk/im_client.h"
#include "tests/e2e/chat_deployment.h"
#include "tests/e2e/sdk_recorder.h"

namespace im::e2e {
namespace {

using std::chrono::seconds;

// What a C client reported, copied out of the callbacks (their strings die with them).
struct CRecorder {
  struct Received {
    std::string conv_id;
    uint64_t seq = 0;
    std::string sender;
    int type = 0;
    std::string body;
    uint64_t ref_seq = 0;
  };
  std::mutex mutex;
  std::condition_variable changed;
  int state = IM_STATE_IDLE;
  std::vector<Received> messages;  // system notices (group changes) apart:
  std::vector<Received> notices;
  std::vector<std::pair<std::string, int>> results;  // client_msg_id, code
  std::vector<std::string> typing;                   // "<uid> in <conv_id>"
  int receipts = 0;

  bool WaitFor(const std::function<bool()>& done) {
    std::unique_lock<std::mutex> lock(mutex);
    return changed.wait_for(lock, seconds(15), done);
  }
  void Changed(const std::function<void()>& change) {
    std::lock_guard<std::mutex> lock(mutex);
    change();
    changed.notify_all();
  }

  static void OnState(void* self, int state, int, const char*) {
    static_cast<CRecorder*>(self)->Changed([&] { static_cast<CRecorder*>(self)->state = state; });
  }
  static void OnMessages(void* self, const im_message* list, size_t count) {
    auto* recorder = static_cast<CRecorder*>(self);
    recorder->Changed([&] {
      for (size_t i = 0; i < count; ++i) {
        const bool notice =
            list[i].type == IM_MESSAGE_SYSTEM && std::string(list[i].sender) == "@system";
        (notice ? recorder->notices : recorder->messages)
            .push_back({list[i].conv_id, list[i].seq, list[i].sender, list[i].type,
                        std::string(list[i].body, list[i].body_len), list[i].ref_seq});
      }
    });
  }
  static void OnSendResult(void* self, const char* id, int code, const char*, uint64_t) {
    auto* recorder = static_cast<CRecorder*>(self);
    recorder->Changed([&] { recorder->results.emplace_back(id, code); });
  }
  static void OnReceipt(void* self, const char*, const char*, uint64_t) {
    auto* recorder = static_cast<CRecorder*>(self);
    recorder->Changed([&] { ++recorder->receipts; });
  }
  static void OnTyping(void* self, const char* conv_id, const char* uid) {
    auto* recorder = static_cast<CRecorder*>(self);
    recorder->Changed([&] { recorder->typing.push_back(std::string(uid) + " in " + conv_id); });
  }
};

// The code (and, for a create, the group) a group call answered, waited for.
struct Answer {
  std::mutex mutex;
  std::condition_variable done;
  bool answered = false;
  int code = -1;
  std::string conv_id;
  std::vector<std::pair<std::string, int>> members;  // uid, role
  uint64_t read_count = 0;
  std::vector<std::string> readers;

  static void OnStatus(void* self, int code) {
    static_cast<Answer*>(self)->Set([&](Answer& a) { a.code = code; });
  }
  static void OnCreated(void* self, int code, const char*, const char* conv_id) {
    static_cast<Answer*>(self)->Set([&](Answer& a) {
      a.code = code;
      a.conv_id = conv_id;
    });
  }
  static void OnMembers(void* self, int code, const im_group_member* list, size_t count) {
    static_cast<Answer*>(self)->Set([&](Answer& a) {
      a.code = code;
      for (size_t i = 0; i < count; ++i) a.members.emplace_back(list[i].uid, list[i].role);
    });
  }
  static void OnReaders(void* self, int code, uint64_t read, uint64_t, const char* const* uids,
                        size_t count, int) {
    static_cast<Answer*>(self)->Set([&](Answer& a) {
      a.code = code;
      a.read_count = read;
      for (size_t i = 0; i < count; ++i) a.readers.emplace_back(uids[i]);
    });
  }
  void Set(const std::function<void(Answer&)>& fill) {
    std::lock_guard<std::mutex> lock(mutex);
    fill(*this);
    answered = true;
    done.notify_all();
  }
  int Wait() {
    std::unique_lock<std::mutex> lock(mutex);
    EXPECT_TRUE(done.wait_for(lock, seconds(15), [this] { return answered; })) << "no answer";
    return code;
  }
};

class CApiTest : public DeploymentTest {
 protected:
  void SetUp() override {
    cluster_ = Deploy();
    ASSERT_TRUE(cluster_->Start());
  }
  // A started C client of `uid`, logged in.
  std::unique_ptr<im_client, void (*)(im_client*)> Connect(const std::string& uid,
                                                           CRecorder& seen) {
    const std::string gateway = Address(cluster_->client_port(0));
    const char* gateways[] = {gateway.c_str()};
    const std::string token = ChatDeployment::Token(uid);
    im_client_config config = {gateways, 1, token.c_str(), "c-phone", nullptr, 10'000};
    im_client_callbacks callbacks = {&seen,
                                     CRecorder::OnState,
                                     CRecorder::OnMessages,
                                     CRecorder::OnSendResult,
                                     CRecorder::OnReceipt,
                                     CRecorder::OnTyping};
    char error[256];
    std::unique_ptr<im_client, void (*)(im_client*)> client(
        im_client_create(&config, &callbacks, error, sizeof error), im_client_destroy);
    EXPECT_NE(client, nullptr) << error;
    if (client == nullptr) return client;
    im_client_start(client.get());
    EXPECT_TRUE(seen.WaitFor([&] { return seen.state == IM_STATE_CONNECTED; })) << uid;
    return client;
  }

  std::unique_ptr<ChatDeployment> cluster_;
};
IM_INSTANTIATE_DEPLOYMENTS(CApiTest);

TEST_P(CApiTest, CoversGroupsChangesAndTyping) {
  const std::string alice = cluster_->Uid("alice");
  const std::string bob = cluster_->Uid("bob");
  const std::string carol = cluster_->Uid("carol");
  CRecorder alice_seen;
  CRecorder bob_seen;
  auto alice_client = Connect(alice, alice_seen);
  auto bob_client = Connect(bob, bob_seen);
  ASSERT_TRUE(alice_client && bob_client);
  im_client* a = alice_client.get();
  im_client* b = bob_client.get();

  Answer created;
  const char* members[] = {bob.c_str(), carol.c_str()};
  im_client_create_group(a, "team", members, 2, Answer::OnCreated, &created);
  ASSERT_EQ(created.Wait(), 0);
  const std::string group = created.conv_id;
  const std::string group_id = group.substr(2);
  Answer promoted;
  im_client_set_group_role(a, group_id.c_str(), bob.c_str(), IM_ROLE_ADMIN, Answer::OnStatus,
                           &promoted);
  EXPECT_EQ(promoted.Wait(), 0);
  Answer removed;
  im_client_leave_group(b, group_id.c_str(), carol.c_str(), Answer::OnStatus, &removed);
  EXPECT_EQ(removed.Wait(), 0) << "an admin removes a member";
  Answer listed;
  im_client_list_group_members(a, group_id.c_str(), Answer::OnMembers, &listed);
  ASSERT_EQ(listed.Wait(), 0);
  const std::vector<std::pair<std::string, int>> expected = {{alice, IM_ROLE_OWNER},
                                                             {bob, IM_ROLE_ADMIN}};
  EXPECT_EQ(listed.members, expected);
  // Each change reached the members as a system notice, in order: created, role, removal.
  ASSERT_TRUE(alice_seen.WaitFor([&] { return alice_seen.notices.size() >= 3; }));
  EXPECT_EQ(alice_seen.notices[0].type, IM_MESSAGE_SYSTEM);
  EXPECT_NE(alice_seen.notices[0].body.find("\"group_created\""), std::string::npos);
  EXPECT_NE(alice_seen.notices[1].body.find("\"role_changed\""), std::string::npos);
  EXPECT_NE(alice_seen.notices[2].body.find("\"member_removed\""), std::string::npos);

  char sent_id[64];
  ASSERT_EQ(im_client_send_message(b, group.c_str(), nullptr, IM_MESSAGE_IMAGE, "png", 3, sent_id,
                                   sizeof sent_id),
            0);
  ASSERT_TRUE(alice_seen.WaitFor([&] { return !alice_seen.messages.empty(); }));
  const CRecorder::Received image = alice_seen.messages[0];
  EXPECT_EQ(image.type, IM_MESSAGE_IMAGE);
  EXPECT_EQ(image.body, "png");
  char recall_id[64];
  ASSERT_EQ(im_client_recall(b, group.c_str(), image.seq, recall_id, sizeof recall_id), 0);
  ASSERT_TRUE(alice_seen.WaitFor([&] { return alice_seen.messages.size() >= 2; }));
  EXPECT_EQ(alice_seen.messages[1].type, IM_MESSAGE_RECALL);
  EXPECT_EQ(alice_seen.messages[1].ref_seq, image.seq);
  ASSERT_TRUE(bob_seen.WaitFor([&] { return bob_seen.results.size() == 2; }));
  EXPECT_EQ(bob_seen.results[1], std::make_pair(std::string(recall_id), 0));

  Answer read_by;
  im_client_mark_read(a, group.c_str(), image.seq);
  ASSERT_TRUE(bob_seen.WaitFor([&] { return bob_seen.receipts > 0; })) << "no receipt for bob";
  im_client_list_readers(b, group.c_str(), image.seq, 1, Answer::OnReaders, &read_by);
  ASSERT_EQ(read_by.Wait(), 0);
  EXPECT_EQ(read_by.read_count, 1u);
  EXPECT_EQ(read_by.readers, std::vector<std::string>{alice});

  im_client_typing(a, group.c_str());
  ASSERT_TRUE(bob_seen.WaitFor([&] { return !bob_seen.typing.empty(); }));
  EXPECT_EQ(bob_seen.typing[0], alice + " in " + group);

  // Bad arguments are refused on the spot, never sent.
  EXPECT_EQ(im_client_send_message(a, group.c_str(), nullptr, 9, "x", 1, nullptr, 0), -1);
  EXPECT_EQ(im_client_recall(a, group.c_str(), 0, nullptr, 0), -1);
  EXPECT_EQ(im_client_edit(a, nullptr, 1, "x", 1, nullptr, 0), -1);
  Answer bad_role;
  im_client_set_group_role(a, group_id.c_str(), bob.c_str(), 7, Answer::OnStatus, &bad_role);
  EXPECT_EQ(bad_role.Wait(), 3);
  Answer no_group;
  const std::string missing = cluster_->Uid("no-such-group");
  im_client_join_group(b, missing.c_str(), nullptr, 0, Answer::OnStatus, &no_group);
  EXPECT_NE(no_group.Wait(), 0) << "joined a group that does not exist";
}

}  // namespace
}  // namespace im::e2e
