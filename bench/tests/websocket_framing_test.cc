#include "bench/websocket_framing.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/websocket/websocket_client_codec.h"

namespace im::bench {
namespace {

using Codec = common::WebSocketClientCodec;

constexpr size_t kMaxMessage = 1024;
constexpr char kAccepted[] =
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: im.v1\r\n\r\n";

// A server's frame: unmasked.
std::string ServerFrame(uint8_t opcode, std::string_view payload) {
  return Codec::Frame(opcode, payload, /*fin=*/true, /*masked=*/false);
}

std::string ServerMessage(const im::v1::Frame& frame) {
  return ServerFrame(0x2, frame.SerializeAsString());
}

im::v1::Frame Pong(uint64_t id) {
  im::v1::Frame frame;
  frame.set_id(id);
  frame.mutable_pong();
  return frame;
}

// Feeds the framing and records what it handed on.
struct Reader {
  WebSocketFraming framing{kMaxMessage};
  int upgrades = 0;
  std::vector<uint64_t> frame_ids;
  std::string out;
  bool close_on_frame = false;

  std::string Feed(std::string_view bytes) {
    return framing.Feed(bytes,
                        {.upgraded =
                             [&] {
                               ++upgrades;
                               return true;
                             },
                         .frame =
                             [&](im::v1::Frame&& frame) {
                               frame_ids.push_back(frame.id());
                               return !close_on_frame;
                             }},
                        &out);
  }
};

TEST(WebSocketFramingTest, TheUpgradeRequestAsksForImV1) {
  const std::string request = WebSocketFraming::UpgradeRequest("127.0.0.1:7080");
  EXPECT_EQ(request.rfind("GET / HTTP/1.1\r\n", 0), 0u);
  EXPECT_NE(request.find("Host: 127.0.0.1:7080\r\n"), std::string::npos);
  EXPECT_NE(request.find("Sec-WebSocket-Protocol: im.v1\r\n"), std::string::npos);
  EXPECT_EQ(request.find("Origin:"), std::string::npos);
}

TEST(WebSocketFramingTest, FramesGoOutAsMaskedBinaryMessages) {
  std::string out = "before";
  WebSocketFraming::AppendFrame(Pong(7), &out);
  ASSERT_GT(out.size(), 8u);
  EXPECT_EQ(out.substr(0, 6), "before");
  EXPECT_EQ(static_cast<uint8_t>(out[6]), 0x82);      // FIN, binary
  EXPECT_NE(static_cast<uint8_t>(out[7]) & 0x80, 0);  // masked
}

TEST(WebSocketFramingTest, AnAnswerSplitOverReadsThenFramesInTheSameRead) {
  Reader r;
  const std::string answer = kAccepted;
  EXPECT_EQ(r.Feed(answer.substr(0, 20)), "");
  EXPECT_EQ(r.upgrades, 0);
  EXPECT_EQ(r.Feed(answer.substr(20) + ServerMessage(Pong(1)) + ServerMessage(Pong(2))), "");
  EXPECT_EQ(r.upgrades, 1);
  EXPECT_TRUE(r.framing.upgraded());
  EXPECT_EQ(r.frame_ids, (std::vector<uint64_t>{1, 2}));
  const std::string third = ServerMessage(Pong(3));
  EXPECT_EQ(r.Feed(third.substr(0, 3)), "");
  EXPECT_EQ(r.Feed(third.substr(3)), "");
  EXPECT_EQ(r.frame_ids, (std::vector<uint64_t>{1, 2, 3}));
}

TEST(WebSocketFramingTest, ARefusedUpgradeEndsTheConnection) {
  Reader r;
  EXPECT_EQ(r.Feed("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"), "ws_refused");
  EXPECT_EQ(r.upgrades, 0);
}

TEST(WebSocketFramingTest, ACloseFrameEndsTheConnectionWithItsCode) {
  Reader r;
  const std::string going_away = std::string("\x03\xe9", 2) + "draining";  // 1001
  EXPECT_EQ(r.Feed(std::string(kAccepted) + ServerFrame(0x8, going_away)), "ws_close_1001");
  Reader bare;
  EXPECT_EQ(bare.Feed(std::string(kAccepted) + ServerFrame(0x8, "")), "ws_close_1005");
}

TEST(WebSocketFramingTest, PingsAreAnsweredWithMaskedPongs) {
  Reader r;
  EXPECT_EQ(r.Feed(std::string(kAccepted) + ServerFrame(0x9, "hi")), "");
  ASSERT_GE(r.out.size(), 2u);
  EXPECT_EQ(static_cast<uint8_t>(r.out[0]), 0x8a);  // FIN, pong
  EXPECT_NE(static_cast<uint8_t>(r.out[1]) & 0x80, 0);
}

TEST(WebSocketFramingTest, WhatIsNotABinaryFrameEndsTheConnection) {
  Reader text;
  EXPECT_EQ(text.Feed(std::string(kAccepted) + ServerFrame(0x1, "hello")), "ws_unexpected_message");
  Reader garbage;
  EXPECT_EQ(garbage.Feed(std::string(kAccepted) + ServerFrame(0x2, "\xff\xff\xff")),
            "bad_frame_from_server");
  Reader big;
  im::v1::Frame frame = Pong(1);
  frame.mutable_error()->set_message(std::string(kMaxMessage, 'x'));
  EXPECT_EQ(big.Feed(std::string(kAccepted) + ServerMessage(frame)), "ws_message_too_big");
  Reader masked;
  EXPECT_EQ(masked.Feed(std::string(kAccepted) + Codec::Frame(0x2, "x")),
            "ws_bad_frame_from_server");
}

TEST(WebSocketFramingTest, NothingIsHandedOnOnceTheHandlerClosed) {
  Reader r;
  r.close_on_frame = true;
  EXPECT_EQ(r.Feed(std::string(kAccepted) + ServerMessage(Pong(1)) + ServerMessage(Pong(2))), "");
  EXPECT_EQ(r.frame_ids, (std::vector<uint64_t>{1}));
  EXPECT_EQ(r.Feed(ServerMessage(Pong(3))), "");
  EXPECT_EQ(r.frame_ids, (std::vector<uint64_t>{1}));
}

}  // namespace
}  // namespace im::bench
