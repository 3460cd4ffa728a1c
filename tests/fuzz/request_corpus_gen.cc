// Writes the seed corpus of request_handler_fuzz into the directory named by argv[1]: one seed
// per request type (and a few shapes of the busy ones), each a caller byte and a Frame. The seeds
// are committed under tests/fuzz/corpus/request_handler; rerun this after changing the protocol:
//   request_corpus_gen tests/fuzz/corpus/request_handler

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "common/token.h"
#include "im/v1/client.pb.h"
#include "tests/fuzz/request_handler_fuzz.h"

namespace {

using im::v1::Frame;

constexpr uint8_t kAlice = 0;
constexpr uint8_t kBob = 1;
constexpr char kAliceBob[] = "s:alice:bob";

struct Seed {
  std::string name;
  uint8_t caller;
  Frame frame;
};

Frame WithId(Frame frame, uint64_t id) {
  frame.set_id(id);
  return frame;
}

Frame Login(const std::string& uid) {
  im::common::TokenClaims claims;
  claims.uid = uid;
  claims.exp_unix_sec = 4'102'444'800;  // 2100-01-01
  Frame f;
  f.mutable_login_req()->set_token(im::common::SignToken(claims, im::fuzz::kTokenSecret));
  f.mutable_login_req()->set_device("phone");
  f.mutable_login_req()->set_platform("android");
  return WithId(std::move(f), 1);
}

Frame Send(const std::string& conv, const std::string& client_msg_id,
           im::v1::MessageType type = im::v1::TEXT, uint64_t ref_seq = 0) {
  Frame f;
  im::v1::SendReq* req = f.mutable_send_req();
  req->set_conv_id(conv);
  req->set_client_msg_id(client_msg_id);
  req->set_type(type);
  req->set_body(type == im::v1::RECALL ? "" : "hello");
  req->set_ref_seq(ref_seq);
  return WithId(std::move(f), 2);
}

std::vector<Seed> Seeds() {
  std::vector<Seed> seeds;
  seeds.push_back({"login", kAlice, Login("alice")});
  seeds.push_back({"send_single", kAlice, Send(kAliceBob, "c-1")});
  Frame to_uid = Send("", "c-2");
  to_uid.mutable_send_req()->set_to_uid("bob");
  seeds.push_back({"send_to_uid", kAlice, to_uid});
  seeds.push_back({"send_group", kBob, Send("g:team", "c-3")});
  seeds.push_back({"recall", kAlice, Send(kAliceBob, "c-4", im::v1::RECALL, 1)});
  seeds.push_back({"edit", kAlice, Send(kAliceBob, "c-5", im::v1::EDIT, 1)});
  Frame sync;
  sync.mutable_sync_req()->set_conv_id(kAliceBob);
  sync.mutable_sync_req()->set_limit(50);
  seeds.push_back({"sync", kBob, WithId(sync, 3)});
  Frame conversations;
  conversations.mutable_conversations_req()->set_limit(20);
  seeds.push_back({"conversations", kBob, WithId(conversations, 4)});
  Frame read;
  read.mutable_read_req()->set_conv_id(kAliceBob);
  read.mutable_read_req()->set_read_seq(1);
  seeds.push_back({"read", kBob, WithId(read, 5)});
  Frame readers;
  readers.mutable_readers_req()->set_conv_id("g:team");
  readers.mutable_readers_req()->set_seq(1);
  readers.mutable_readers_req()->set_names(true);
  seeds.push_back({"readers", kAlice, WithId(readers, 6)});
  Frame ack;
  im::v1::AckReq::Cursor* cursor = ack.mutable_ack_req()->add_cursors();
  cursor->set_conv_id(kAliceBob);
  cursor->set_seq(1);
  seeds.push_back({"ack", kBob, WithId(ack, 7)});
  Frame typing;
  typing.mutable_typing_req()->set_conv_id(kAliceBob);
  seeds.push_back({"typing", kAlice, WithId(typing, 8)});
  Frame presence;
  presence.mutable_presence_subscribe_req()->add_uids("bob");
  presence.mutable_presence_subscribe_req()->add_uids("carol");
  seeds.push_back({"presence", kAlice, WithId(presence, 9)});
  Frame resume;
  resume.mutable_resume_req()->set_resume_token("not-a-resume-token");
  seeds.push_back({"resume", kAlice, WithId(resume, 10)});
  Frame renew;
  renew.mutable_resume_renew_req()->set_resume_token("not-a-resume-token");
  seeds.push_back({"resume_renew", kAlice, WithId(renew, 11)});
  Frame create;
  create.mutable_group_create_req()->set_name("team");
  create.mutable_group_create_req()->add_members("bob");
  create.mutable_group_create_req()->add_members("carol");
  seeds.push_back({"group_create", kAlice, WithId(create, 12)});
  Frame join;
  join.mutable_group_join_req()->set_group_id("team");
  join.mutable_group_join_req()->add_uids("dave");
  seeds.push_back({"group_join", kAlice, WithId(join, 13)});
  Frame leave;
  leave.mutable_group_leave_req()->set_group_id("team");
  seeds.push_back({"group_leave", kBob, WithId(leave, 14)});
  Frame members;
  members.mutable_group_members_req()->set_group_id("team");
  members.mutable_group_members_req()->set_limit(10);
  seeds.push_back({"group_members", kBob, WithId(members, 15)});
  Frame role;
  role.mutable_group_set_role_req()->set_group_id("team");
  role.mutable_group_set_role_req()->set_uid("bob");
  role.mutable_group_set_role_req()->set_role(im::v1::ADMIN);
  seeds.push_back({"group_set_role", kAlice, WithId(role, 16)});
  Frame ping;  // a frame the gateway keeps: logic answers UNEXPECTED_FRAME
  ping.mutable_ping()->set_client_time_ms(1);
  seeds.push_back({"ping", kAlice, WithId(ping, 17)});
  return seeds;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUTPUT_DIR\n", argv[0]);
    return 2;
  }
  for (const Seed& seed : Seeds()) {
    const std::string path = std::string(argv[1]) + "/" + seed.name;
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.put(static_cast<char>(seed.caller));
    out << seed.frame.SerializeAsString();
    if (!out) {
      std::fprintf(stderr, "cannot write %s\n", path.c_str());
      return 1;
    }
  }
  return 0;
}
