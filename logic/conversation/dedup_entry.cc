#include "logic/conversation/dedup_entry.h"

#include <cstdint>
#include <vector>

#include "common/parse_int.h"
#include "fmt/format.h"

namespace im::logic {

using common::ParseInt;

std::string DedupKey(std::string_view sender, std::string_view client_msg_id) {
  return fmt::format("{}:{}", sender, client_msg_id);
}

std::optional<SentBy> ParseDedupKey(std::string_view key) {
  const size_t colon = key.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == key.size()) {
    return std::nullopt;
  }
  return SentBy{key.substr(0, colon), key.substr(colon + 1)};
}

std::string EncodeDedup(const im::v1::Message& message) {
  return fmt::format("{}|{}|{}|{}", message.conv_id(), message.seq(), message.msg_id(),
                     message.created_ms());
}

std::optional<im::v1::SendResp> DecodeDedup(std::string_view text) {
  std::vector<std::string_view> parts;
  for (size_t start = 0;;) {
    const size_t bar = text.find('|', start);
    parts.push_back(text.substr(start, bar - start));
    if (bar == std::string_view::npos) break;
    start = bar + 1;
  }
  uint64_t seq = 0, msg_id = 0;
  int64_t created_ms = 0;
  if (parts.size() != 4 || !ParseInt(parts[1], &seq) || !ParseInt(parts[2], &msg_id) ||
      !ParseInt(parts[3], &created_ms)) {
    return std::nullopt;
  }
  im::v1::SendResp resp;
  resp.set_conv_id(std::string(parts[0]));
  resp.set_seq(seq);
  resp.set_msg_id(msg_id);
  resp.set_server_time_ms(created_ms);
  return resp;
}

}  // namespace im::logic
