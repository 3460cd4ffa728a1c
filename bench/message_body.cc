#include "bench/message_body.h"

#include <algorithm>
#include <cstring>

namespace im::bench {

std::string MessageBody(const BodyHeader& header, uint32_t bytes, char fill) {
  std::string body(std::max<size_t>(bytes, kBodyHeaderBytes), fill);
  std::memcpy(body.data(), &header.message, sizeof(header.message));
  std::memcpy(body.data() + sizeof(header.message), &header.scheduled_ns,
              sizeof(header.scheduled_ns));
  return body;
}

std::optional<BodyHeader> ReadBodyHeader(std::string_view body) {
  if (body.size() < kBodyHeaderBytes) return std::nullopt;
  BodyHeader header;
  std::memcpy(&header.message, body.data(), sizeof(header.message));
  std::memcpy(&header.scheduled_ns, body.data() + sizeof(header.message),
              sizeof(header.scheduled_ns));
  return header;
}

}  // namespace im::bench
