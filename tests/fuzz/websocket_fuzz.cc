// libFuzzer target for the gateway's WebSocket reading: the opening handshake (http-parser) and
// the frames (wslay) put together into messages, as a client's bytes reach WebSocketSession.
//
// Input layout: 4 control bytes, then the byte stream a client would send.
//   control[0]      the message limit: 16 + 64 * (control[0] >> 1) bytes; bit 0: an allowed
//                   origins list is set (else any origin is allowed)
//   control[1..3]   chunk sizes, used in turn: n feeds min(n, rest) bytes (0 feeds one byte);
//                   255 feeds all that is left
// The stream is read twice: whole, and in those chunks. Both must tell the same story (the
// bytes written back, the messages, the signs of life, the failure), so that how TCP splits a
// stream can never change what the gateway does; no message may pass the limit; an answered
// handshake starts with an HTTP status line and a refused one ends the reading.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/websocket/websocket_session.h"

namespace {

using im::gateway::WebSocketSession;

constexpr size_t kControlBytes = 4;

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "websocket_fuzz: %s\n", what);
  std::abort();
}

// What a session did with a stream.
struct Story {
  std::string written;
  std::vector<std::string> messages;
  int alive = 0;
  std::optional<WebSocketSession::Failure> failure;
  bool opened() const { return written.rfind("HTTP/1.1 101 ", 0) == 0; }

  bool operator==(const Story& other) const {
    const bool same_failure = failure.has_value() == other.failure.has_value() &&
                              (!failure || (failure->in_handshake == other.failure->in_handshake &&
                                            failure->close_code == other.failure->close_code &&
                                            failure->reason == other.failure->reason));
    return written == other.written && messages == other.messages && alive == other.alive &&
           same_failure;
  }
};

// Reads `stream` in pieces of the sizes `chunks` gives in turn (an empty list: all at once).
Story Read(const WebSocketSession::Options& options, std::string_view stream,
           const std::vector<uint8_t>& chunks) {
  WebSocketSession session(options);
  Story story;
  // Named: Events holds references to them.
  const auto write = [&](std::string bytes) { story.written += bytes; };
  const auto message = [&](std::string_view bytes) {
    if (bytes.size() > options.max_message_bytes) Fail("a message past the limit");
    story.messages.emplace_back(bytes);
    return true;
  };
  const auto alive = [&] { story.alive++; };
  const WebSocketSession::Events events{write, message, alive};
  size_t next_chunk = 0;
  while (!stream.empty() && !story.failure) {
    size_t size = stream.size();
    if (!chunks.empty()) {
      const uint8_t n = chunks[next_chunk++ % chunks.size()];
      if (n != 255) size = std::min<size_t>(std::max<size_t>(n, 1), stream.size());
    }
    story.failure = session.Feed(stream.substr(0, size), events);
    stream.remove_prefix(size);
  }
  return story;
}

void Describe(const char* name, const Story& story) {
  std::fprintf(stderr, "%s: %zu bytes written, %zu messages, %d signs of life, failure: %s\n", name,
               story.written.size(), story.messages.size(), story.alive,
               story.failure ? story.failure->reason.c_str() : "none");
}

void CheckAnswer(const Story& story) {
  const bool refused = story.failure && story.failure->in_handshake;
  if (story.written.empty()) {
    if (refused) Fail("a handshake refused without an answer");
    if (!story.messages.empty()) Fail("a message with no handshake answered");
    return;
  }
  if (story.written.rfind("HTTP/1.1 ", 0) != 0) Fail("the first bytes written are not HTTP");
  if (!story.opened() && !refused) Fail("an HTTP error written without a refused handshake");
  if (story.opened() && refused) Fail("a handshake both accepted and refused");
  if (!story.opened() && !story.messages.empty()) Fail("a message before the handshake");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < kControlBytes) return 0;
  WebSocketSession::Options options;
  options.max_message_bytes = 16 + 64 * (data[0] >> 1);
  if (data[0] & 1) options.handshake.allowed_origins = {"https://chat.example.com"};
  const std::vector<uint8_t> chunks(data + 1, data + kControlBytes);
  const std::string_view stream(reinterpret_cast<const char*>(data + kControlBytes),
                                size - kControlBytes);

  const Story whole = Read(options, stream, {});
  const Story chunked = Read(options, stream, chunks);
  if (!(whole == chunked)) {
    Describe("whole", whole);
    Describe("chunked", chunked);
    Fail("reading in chunks told another story than reading it whole");
  }
  CheckAnswer(whole);
  return 0;
}
