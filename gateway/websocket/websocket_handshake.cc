#include "gateway/websocket/websocket_handshake.h"

#include <http_parser.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include <algorithm>
#include <array>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "fmt/format.h"

namespace im::gateway {

namespace {

constexpr std::string_view kAcceptGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
constexpr size_t kKeyBytes = 16;  // a Sec-WebSocket-Key is 16 random bytes in base64

std::string_view StatusText(int status) {
  switch (status) {
    case 400:
      return "Bad Request";
    case 403:
      return "Forbidden";
    case 405:
      return "Method Not Allowed";
    case 426:
      return "Upgrade Required";
    case 431:
      return "Request Header Fields Too Large";
    default:
      return "Error";
  }
}

// Debian's Abseil has a string_view of its own.
std::string_view Trim(std::string_view text) {
  const absl::string_view trimmed =
      absl::StripAsciiWhitespace(absl::string_view(text.data(), text.size()));
  return {trimmed.data(), trimmed.size()};
}

std::string Lower(std::string_view text) {
  return absl::AsciiStrToLower(absl::string_view(text.data(), text.size()));
}

// Whether `base64` decodes to exactly `bytes` bytes (padding included, as the RFC's keys are).
bool IsBase64Of(std::string_view base64, size_t bytes) {
  if (base64.size() != 4 * ((bytes + 2) / 3)) return false;
  std::array<unsigned char, 64> decoded{};
  const int n =
      EVP_DecodeBlock(decoded.data(), reinterpret_cast<const unsigned char*>(base64.data()),
                      static_cast<int>(base64.size()));
  if (n < 0) return false;
  const size_t padding = static_cast<size_t>(std::count(base64.end() - 2, base64.end(), '='));
  return static_cast<size_t>(n) - padding == bytes;
}

}  // namespace

// http-parser's callbacks; they fill the handshake the parser points at. http-parser hands a name
// or a value over in pieces where a Feed's bytes end, and a value folded over lines (obsolete,
// RFC 9112 section 5.2) in pieces too: the pieces are put back together so that how the stream
// was cut changes nothing.
struct WebSocketHandshake::Callbacks {
  static WebSocketHandshake& Owner(http_parser* p) {
    return *static_cast<WebSocketHandshake*>(p->data);
  }
  static int OnHeaderField(http_parser* p, const char* at, size_t length) {
    WebSocketHandshake& h = Owner(p);
    // A name goes on only from the very end of the last Feed to the start of this one; else the
    // last name had no value, and this one is new.
    const bool goes_on = h.name_open_ && at == h.feed_start_;
    if (!goes_on) {
      h.name_.clear();
      h.value_ = nullptr;
    }
    h.name_.append(Lower(std::string_view(at, length)));
    h.name_open_ = at + length == h.feed_end_;
    return 0;
  }
  static int OnHeaderValue(http_parser* p, const char* at, size_t length) {
    WebSocketHandshake& h = Owner(p);
    h.name_open_ = false;
    if (h.value_ == nullptr) {
      h.value_ = &h.headers_[h.name_];
      if (!h.value_->empty()) h.value_->append(", ");  // a repeated header: one list
    }
    h.value_->append(at, length);
    return 0;
  }
  static int OnMessageComplete(http_parser* p) {
    Owner(p).request_complete_ = true;
    http_parser_pause(p, 1);  // one request: what follows is the WebSocket's
    return 0;
  }
  static const http_parser_settings& Settings() {
    static const http_parser_settings settings = [] {
      http_parser_settings s{};
      s.on_header_field = &Callbacks::OnHeaderField;
      s.on_header_value = &Callbacks::OnHeaderValue;
      s.on_message_complete = &Callbacks::OnMessageComplete;
      return s;
    }();
    return settings;
  }
};

WebSocketHandshake::WebSocketHandshake(const Options& options) : options_(options) {
  http_parser_init(&parser_, HTTP_REQUEST);
  parser_.data = this;
}

WebSocketHandshake::~WebSocketHandshake() = default;

std::string WebSocketHandshake::AcceptKey(std::string_view key) {
  const std::string keyed = fmt::format("{}{}", key, kAcceptGuid);
  std::array<unsigned char, SHA_DIGEST_LENGTH> digest{};
  SHA1(reinterpret_cast<const unsigned char*>(keyed.data()), keyed.size(), digest.data());
  std::array<unsigned char, 4 * ((SHA_DIGEST_LENGTH + 2) / 3) + 1> encoded{};
  const int n = EVP_EncodeBlock(encoded.data(), digest.data(), SHA_DIGEST_LENGTH);
  return std::string(reinterpret_cast<const char*>(encoded.data()), static_cast<size_t>(n));
}

WebSocketHandshake::Result WebSocketHandshake::Feed(std::string_view bytes) {
  const std::string_view readable = bytes.substr(0, options_.max_request_bytes - request_bytes_);
  feed_start_ = readable.data();
  feed_end_ = readable.data() + readable.size();
  const size_t parsed =
      http_parser_execute(&parser_, &Callbacks::Settings(), readable.data(), readable.size());
  request_bytes_ += parsed;
  const http_errno error = HTTP_PARSER_ERRNO(&parser_);
  if (error != HPE_OK && error != HPE_PAUSED) {
    return Refuse(400, fmt::format("not an HTTP request: {}", http_errno_name(error)));
  }
  if (!request_complete_) {
    if (request_bytes_ < options_.max_request_bytes) return {};
    return Refuse(431,
                  fmt::format("the request is longer than {} bytes", options_.max_request_bytes));
  }
  return Judge(bytes.substr(parsed));
}

WebSocketHandshake::Result WebSocketHandshake::Judge(std::string_view rest) {
  const std::string_view method = http_method_str(static_cast<http_method>(parser_.method));
  if (method != "GET") {
    return Refuse(405, fmt::format("method {}: a WebSocket opens with GET", method),
                  "Allow: GET\r\n");
  }
  if (parser_.http_major < 1 || (parser_.http_major == 1 && parser_.http_minor < 1)) {
    return Refuse(400, "a WebSocket needs HTTP/1.1");
  }
  if (Header("host") == nullptr) return Refuse(400, "no Host header");
  if (!HeaderHasToken("upgrade", "websocket")) {
    return Refuse(426, "this port speaks WebSocket only (Upgrade: websocket)",
                  "Upgrade: websocket\r\nConnection: Upgrade\r\n");
  }
  if (!HeaderHasToken("connection", "upgrade")) return Refuse(400, "no Connection: Upgrade");
  const std::string* version = Header("sec-websocket-version");
  if (version == nullptr || Trim(*version) != "13") {
    return Refuse(426, "WebSocket version 13 is the one spoken here",
                  "Sec-WebSocket-Version: 13\r\n");
  }
  const std::string* key = Header("sec-websocket-key");
  const std::string_view key_text = key ? Trim(*key) : "";
  if (!IsBase64Of(key_text, kKeyBytes)) {
    return Refuse(400, "Sec-WebSocket-Key is not 16 bytes in base64");
  }
  if (const std::string* origin = Header("origin"); origin && !options_.allowed_origins.empty()) {
    const std::string lower = Lower(Trim(*origin));
    const auto& allowed = options_.allowed_origins;
    if (std::find(allowed.begin(), allowed.end(), lower) == allowed.end()) {
      return Refuse(403, fmt::format("origin {} is not allowed", lower));
    }
  }
  if (!HeaderHasToken("sec-websocket-protocol", kWebSocketSubprotocol)) {
    return Refuse(400, fmt::format("the subprotocol {} was not asked for (Sec-WebSocket-Protocol)",
                                   kWebSocketSubprotocol));
  }
  Result accepted;
  accepted.progress = Progress::kAccepted;
  accepted.answer = fmt::format(
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Accept: {}\r\nSec-WebSocket-Protocol: {}\r\n\r\n",
      AcceptKey(key_text), kWebSocketSubprotocol);
  accepted.rest = rest;
  return accepted;
}

WebSocketHandshake::Result WebSocketHandshake::Refuse(int status, std::string reason,
                                                      std::string extra_headers) {
  Result refused;
  refused.progress = Progress::kRefused;
  const std::string body = reason + "\n";
  refused.answer = fmt::format(
      "HTTP/1.1 {} {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n"
      "{}\r\n{}",
      status, StatusText(status), body.size(), extra_headers, body);
  refused.refusal = fmt::format("{} ({})", reason, status);
  return refused;
}

const std::string* WebSocketHandshake::Header(std::string_view lower_name) const {
  const auto it = headers_.find(std::string(lower_name));
  return it == headers_.end() ? nullptr : &it->second;
}

bool WebSocketHandshake::HeaderHasToken(std::string_view lower_name, std::string_view token) const {
  const std::string* value = Header(lower_name);
  if (value == nullptr) return false;
  for (absl::string_view item : absl::StrSplit(*value, ',')) {
    if (absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(item),
                               absl::string_view(token.data(), token.size()))) {
      return true;
    }
  }
  return false;
}

}  // namespace im::gateway
