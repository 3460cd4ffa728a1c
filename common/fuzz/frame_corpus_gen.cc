// Writes the seed corpus of frame_decoder_fuzz into the directory named by argv[1].
// Each seed is 4 control bytes (see frame_decoder_fuzz.cc) followed by encoded frames.
// The seeds are committed under common/fuzz/corpus/; rerun this after changing the wire format:
//   frame_corpus_gen common/fuzz/corpus

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "common/frame_codec.h"
#include "im/v1/client.pb.h"

namespace {

using im::v1::Frame;

Frame LoginReq() {
  Frame f;
  f.set_id(1);
  auto* req = f.mutable_login_req();
  req->set_token("eyJ1aWQiOiJhbGljZSIsImV4cCI6MTcwMDAwMDAwMH0.c2lnbmF0dXJl");
  req->set_device("phone-1");
  req->set_platform("android");
  req->set_client_version("1.0.0");
  return f;
}

Frame SendReq(uint64_t id, size_t body_bytes) {
  Frame f;
  f.set_id(id);
  auto* req = f.mutable_send_req();
  req->set_conv_id("s:alice:bob");
  req->set_client_msg_id("cm-" + std::to_string(id));
  req->set_type(im::v1::TEXT);
  req->set_body(std::string(body_bytes, 'b'));
  return f;
}

Frame Ping() {
  Frame f;
  f.set_id(3);
  f.mutable_ping()->set_client_time_ms(1'700'000'000'000);
  return f;
}

Frame MessagePush(int messages) {
  Frame f;
  for (int i = 0; i < messages; ++i) {
    auto* m = f.mutable_message_push()->add_messages();
    m->set_conv_id("g:42");
    m->set_seq(10 + i);
    m->set_msg_id(0x0123456789ABCDEFull + i);
    m->set_sender("bob");
    m->set_client_msg_id("c-" + std::to_string(i));
    m->set_type(im::v1::TEXT);
    m->set_body("hi " + std::to_string(i));
    m->set_created_ms(1'700'000'000'000 + i);
  }
  return f;
}

Frame AckReq() {
  Frame f;
  f.set_id(4);
  for (int i = 0; i < 2; ++i) {
    auto* c = f.mutable_ack_req()->add_cursors();
    c->set_conv_id("g:" + std::to_string(i));
    c->set_seq(99 + i);
  }
  return f;
}

Frame SyncResp() {
  Frame f;
  f.set_id(5);
  auto* resp = f.mutable_sync_resp();
  resp->mutable_status()->set_code(im::v1::OK);
  resp->set_conv_id("s:alice:bob");
  *resp->add_messages() = MessagePush(1).message_push().messages(0);
  resp->add_holes()->set_first(3);
  resp->mutable_holes(0)->set_last(4);
  resp->set_has_more(true);
  resp->set_max_seq(12);
  return f;
}

Frame ErrorPush() {
  Frame f;
  f.mutable_error()->set_code(im::v1::FRAME_TOO_LARGE);
  f.mutable_error()->set_message("frame too large");
  return f;
}

std::string Control(uint8_t small_limit, uint8_t c1, uint8_t c2, uint8_t c3) {
  return std::string{static_cast<char>(small_limit), static_cast<char>(c1), static_cast<char>(c2),
                     static_cast<char>(c3)};
}

std::string Encode(const std::vector<Frame>& frames) {
  std::string out;
  for (const Frame& f : frames) im::common::AppendFrame(f, &out);
  return out;
}

std::string Header(uint32_t length) {
  return std::string{static_cast<char>(length >> 24), static_cast<char>(length >> 16),
                     static_cast<char>(length >> 8), static_cast<char>(length)};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <corpus-dir>\n", argv[0]);
    return 2;
  }
  const std::vector<std::pair<std::string, std::string>> seeds = {
      {"login_req", Control(0x40, 255, 255, 255) + Encode({LoginReq()})},
      {"send_req_64", Control(0x80, 7, 1, 255) + Encode({SendReq(2, 64)})},
      {"send_req_1k", Control(0xF8, 200, 255, 13) + Encode({SendReq(2, 1024)})},
      {"ping", Control(0x10, 1, 1, 1) + Encode({Ping()})},
      {"message_push", Control(0xFF, 3, 0, 50) + Encode({MessagePush(3)})},
      {"mixed_stream",
       Control(0x20, 5, 100, 255) + Encode({LoginReq(), SendReq(6, 64), Ping(), MessagePush(2),
                                            AckReq(), SyncResp(), ErrorPush()})},
      {"zero_length", Control(0x00, 2, 2, 2) + Encode({Ping()}) + Header(0)},
      {"too_large", Control(0x30, 9, 1, 255) + Encode({Ping()}) + Header(64 * 1024 + 1)},
      {"malformed", Control(0x30, 3, 255, 1) + Encode({Ping()}) + Header(3) + "\xFF\xFF\xFF"},
  };
  const std::string dir = argv[1];
  for (const auto& [name, bytes] : seeds) {
    std::ofstream out(dir + "/" + name, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) {
      std::fprintf(stderr, "cannot write %s/%s\n", dir.c_str(), name.c_str());
      return 1;
    }
  }
  return 0;
}
