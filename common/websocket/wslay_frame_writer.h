#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace im::common {

// One WebSocket frame (RFC 6455 section 5.2) to write.
struct FrameToWrite {
  uint8_t opcode = 0x2;  // binary
  std::string_view payload;
  bool fin = true;
  bool masked = false;  // a client's frames are masked, a server's not
  uint8_t rsv = 0;      // reserved bits: set only to break the RFC on purpose (tests)
  // false: the header alone, for an unmasked payload sent as it is (a push serialized once and
  // shared by many connections goes out without a copy). A masked payload is always written.
  bool with_payload = true;
};

// The frame's bytes, made by wslay's wslay_frame_send through one context per thread and kind
// (a context holds 4 KiB of buffers, and one that masked once goes on masking).
std::string WriteFrame(const FrameToWrite& frame);

}  // namespace im::common
