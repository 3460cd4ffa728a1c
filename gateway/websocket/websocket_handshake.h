#pragma once

#include <http_parser.h>

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace im::gateway {

// The subprotocol every WebSocket client must ask for: one im.v1.Frame per binary message.
inline constexpr std::string_view kWebSocketSubprotocol = "im.v1";

// The opening handshake of a WebSocket connection, server side (RFC 6455 section 4.2): reads the
// client's HTTP upgrade request with http-parser, checks it, and makes the answer: 101 with
// Sec-WebSocket-Accept and the im.v1 subprotocol, or an HTTP error that says what was wrong.
// Pure: no I/O. Bytes may arrive split anywhere; the first bytes after the request (a client may
// send its first frame at once) are handed back as `rest`.
class WebSocketHandshake {
 public:
  struct Options {
    // Origins a browser may connect from ("https://chat.example.com"); empty: any. Clients that
    // send no Origin (apps, servers) are not browsers and are not checked.
    std::vector<std::string> allowed_origins;
    size_t max_request_bytes = 8 * 1024;
  };

  enum class Progress { kNeedMore, kAccepted, kRefused };
  struct Result {
    Progress progress = Progress::kNeedMore;
    std::string answer;     // the bytes to send back (accepted or refused); empty while kNeedMore
    std::string_view rest;  // kAccepted: bytes after the request, already the WebSocket's
    std::string refusal;    // kRefused: why, for the log
  };

  // Keeps a reference to `options` (every connection of a port shares one): it must outlive this.
  explicit WebSocketHandshake(const Options& options);
  explicit WebSocketHandshake(Options&&) = delete;
  ~WebSocketHandshake();
  WebSocketHandshake(const WebSocketHandshake&) = delete;
  WebSocketHandshake& operator=(const WebSocketHandshake&) = delete;

  // Reads the next bytes of the request. After kAccepted or kRefused it must not be fed again.
  Result Feed(std::string_view bytes);

  // Sec-WebSocket-Accept for a Sec-WebSocket-Key: base64(SHA-1(key + the RFC's GUID)).
  static std::string AcceptKey(std::string_view key);

 private:
  struct Callbacks;
  Result Judge(std::string_view rest);
  Result Refuse(int status, std::string reason, std::string extra_headers = "");
  const std::string* Header(std::string_view lower_name) const;
  // Whether the comma-separated header holds `token` (case-insensitive).
  bool HeaderHasToken(std::string_view lower_name, std::string_view token) const;

  const Options& options_;
  http_parser parser_;
  size_t request_bytes_ = 0;  // read by the parser so far
  bool request_complete_ = false;
  std::map<std::string, std::string> headers_;  // lower-case names; repeats joined by ", "
  std::string name_;                            // the header being read
  std::string* value_ = nullptr;                // its value in headers_, once begun
  bool name_open_ = false;            // the last piece of name_ ended where its Feed's bytes did
  const char* feed_start_ = nullptr;  // the bytes of the Feed under way
  const char* feed_end_ = nullptr;
};

}  // namespace im::gateway
