// WebSocketHandshake and WebSocketSession on their own: no sockets, bytes in and bytes out.
#include "gateway/websocket/websocket_handshake.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/websocket/websocket_client_codec.h"
#include "gateway/websocket/websocket_session.h"

namespace im::gateway {
namespace {

using common::WebSocketClientCodec;
using Progress = WebSocketHandshake::Progress;

const std::string kRequest = WebSocketClientCodec::Request({});

TEST(WebSocketHandshakeTest, TheAcceptKeyIsTheRfcsExample) {
  // RFC 6455 section 1.3.
  EXPECT_EQ(WebSocketHandshake::AcceptKey("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST(WebSocketHandshakeTest, ARequestSplitAnywhereIsAnsweredTheSameAndWhatFollowsIsHandedBack) {
  const WebSocketHandshake::Options options;
  const std::string stream = kRequest + "frame bytes";
  std::string whole_answer;
  {
    WebSocketHandshake whole(options);
    const WebSocketHandshake::Result result = whole.Feed(stream);
    ASSERT_EQ(result.progress, Progress::kAccepted) << result.refusal;
    EXPECT_EQ(result.rest, "frame bytes");
    whole_answer = result.answer;
  }
  for (size_t split = 1; split < kRequest.size(); ++split) {
    WebSocketHandshake handshake(options);
    const WebSocketHandshake::Result first =
        handshake.Feed(std::string_view(stream).substr(0, split));
    ASSERT_EQ(first.progress, Progress::kNeedMore) << "split at " << split;
    const WebSocketHandshake::Result second =
        handshake.Feed(std::string_view(stream).substr(split));
    ASSERT_EQ(second.progress, Progress::kAccepted)
        << "split at " << split << ": " << second.refusal;
    EXPECT_EQ(second.answer, whole_answer);
    EXPECT_EQ(second.rest, "frame bytes");
  }
}

TEST(WebSocketHandshakeTest, AHeaderWithNoValueDoesNotRunIntoTheNext) {
  const WebSocketHandshake::Options options;
  std::string request = kRequest;
  request.insert(request.find("Sec-WebSocket-Key"), "X-Empty:\r\n");
  // Split right after the empty header too: the next name starts a Feed of its own.
  const size_t split = request.find("Sec-WebSocket-Key");
  WebSocketHandshake handshake(options);
  ASSERT_EQ(handshake.Feed(std::string_view(request).substr(0, split)).progress,
            Progress::kNeedMore);
  const WebSocketHandshake::Result result = handshake.Feed(std::string_view(request).substr(split));
  EXPECT_EQ(result.progress, Progress::kAccepted) << result.refusal;
}

TEST(WebSocketHandshakeTest, RepeatedProtocolHeadersAreOneListAndTheAnswerNamesImV1) {
  WebSocketClientCodec::UpgradeRequest request;
  request.protocol = "chat";
  std::string text = WebSocketClientCodec::Request(request);
  text.insert(text.size() - 2, "Sec-WebSocket-Protocol: IM.V1 \r\n");
  const WebSocketHandshake::Options options;
  WebSocketHandshake handshake(options);
  const WebSocketHandshake::Result result = handshake.Feed(text);
  ASSERT_EQ(result.progress, Progress::kAccepted) << result.refusal;
  EXPECT_NE(result.answer.find("Sec-WebSocket-Protocol: im.v1\r\n"), std::string::npos);
}

TEST(WebSocketSessionTest, MessagesAreTheSameHowEverTheStreamIsCutAndTheReaderRestsBetween) {
  const WebSocketSession::Options options;
  const std::vector<std::string> sent = {"first", std::string(300, 'b'),
                                         std::string(70'000 / 2, 'c'), ""};
  std::string stream = kRequest;
  for (const std::string& message : sent) stream += WebSocketClientCodec::Frame(0x2, message);
  for (const size_t piece : {size_t{1}, size_t{7}, size_t{4096}, stream.size()}) {
    SCOPED_TRACE(piece);
    WebSocketSession session(options);
    std::vector<std::string> received;
    std::string written;
    // Named: Events holds references to them.
    const auto write = [&](std::string bytes) { written += bytes; };
    const auto message = [&](std::string_view bytes) {
      received.emplace_back(bytes);
      return true;
    };
    const auto alive = [] {};
    const WebSocketSession::Events events{write, message, alive};
    for (size_t at = 0; at < stream.size(); at += piece) {
      ASSERT_FALSE(session.Feed(std::string_view(stream).substr(at, piece), events).has_value());
    }
    EXPECT_EQ(received, sent);
    EXPECT_EQ(written.rfind("HTTP/1.1 101 ", 0), 0u);
    EXPECT_TRUE(session.open());
  }
}

TEST(WebSocketSessionTest, TheGatewaysFramesAreUnmaskedAndTheCloseOnlyOnce) {
  const WebSocketSession::Options options;
  WebSocketSession session(options);
  const std::string header = WebSocketSession::BinaryHeader(std::string(200, 'p'));
  EXPECT_EQ(header, std::string("\x82\x7e\x00\xc8", 4));  // FIN+binary, 126: 16-bit length
  EXPECT_EQ(WebSocketSession::BinaryMessage("ab"), std::string("\x82\x02"
                                                               "ab",
                                                               4));
  EXPECT_EQ(WebSocketSession::CloseFrame(1001, "drain"), std::string("\x88\x07\x03\xe9"
                                                                     "drain",
                                                                     9));
  EXPECT_EQ(session.Close(1000, "x"), "") << "not open yet: no close frame";
  const auto write = [](std::string) {};
  const auto message = [](std::string_view) { return true; };
  const auto alive = [] {};
  const WebSocketSession::Events events{write, message, alive};
  ASSERT_FALSE(session.Feed(kRequest, events).has_value());
  EXPECT_EQ(session.Close(1001, "drain"), WebSocketSession::CloseFrame(1001, "drain"));
  EXPECT_EQ(session.Close(1001, "drain"), "");
}

}  // namespace
}  // namespace im::gateway
