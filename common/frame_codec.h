#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/functional/function_ref.h"
#include "im/v1/client.pb.h"

namespace im::common {

inline constexpr size_t kFrameHeaderBytes = 4;
inline constexpr uint32_t kDefaultMaxFrameBytes = 64 * 1024;

// Appends the 4-byte big-endian length and the serialized frame to `out`.
void AppendFrame(const im::v1::Frame& frame, std::string* out);
std::string EncodeFrame(const im::v1::Frame& frame);
// Prefixes an already serialized Frame with its length (push fan-out serializes once).
std::string EncodeSerializedFrame(std::string_view serialized_frame);

enum class DecodeError {
  kNone,
  kZeroLength,     // a length prefix of 0
  kFrameTooLarge,  // a length prefix above the limit: nothing after it can be trusted
  kMalformed,      // the bytes of a frame do not parse as im.v1.Frame
};

// Maps a decoder error to the code the gateway sends in Error{} before it closes.
im::v1::Code DecodeErrorCode(DecodeError error);
std::string_view DecodeErrorName(DecodeError error);

// Turns a byte stream into Frames. Pure: no I/O, no clock.
// Bytes may arrive split or coalesced at any point. Complete frames inside one Feed() are parsed
// straight from the caller's buffer; only the tail of an incomplete frame is copied, and that copy
// is released as soon as the frame completes, so an idle connection holds no buffer.
// Not thread-safe: one decoder per connection, used on the connection's loop.
class FrameDecoder {
 public:
  // Returns false to stop decoding (for example, the connection is closing).
  using FrameSink = absl::FunctionRef<bool(im::v1::Frame&& frame)>;

  explicit FrameDecoder(uint32_t max_frame_bytes = kDefaultMaxFrameBytes);

  // Decodes what `bytes` completes and hands each frame to `sink`, in order. Returns the first
  // error; after an error the stream is unusable and the decoder must not be fed again.
  DecodeError Feed(std::string_view bytes, FrameSink sink);

  // Bytes held for an incomplete frame (0 when the stream is at a frame boundary).
  size_t buffered_bytes() const { return pending_.size(); }
  uint32_t max_frame_bytes() const { return max_frame_bytes_; }

 private:
  // Parses as many whole frames as `data` holds; returns bytes consumed or sets *error.
  size_t DecodeWholeFrames(std::string_view data, FrameSink sink, DecodeError* error,
                           bool* stopped);
  // Validates a length prefix read from `header`.
  DecodeError CheckLength(uint32_t length) const;

  uint32_t max_frame_bytes_;
  std::string pending_;
  DecodeError failed_ = DecodeError::kNone;
};

}  // namespace im::common
