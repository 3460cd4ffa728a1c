#include "common/frame_codec.h"

#include <algorithm>

namespace im::common {
namespace {

uint32_t ReadBigEndian32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) | uint32_t{u[3]};
}

void WriteBigEndian32(uint32_t value, char* p) {
  p[0] = static_cast<char>(value >> 24);
  p[1] = static_cast<char>(value >> 16);
  p[2] = static_cast<char>(value >> 8);
  p[3] = static_cast<char>(value);
}

}  // namespace

void AppendFrame(const im::v1::Frame& frame, std::string* out) {
  const size_t body = frame.ByteSizeLong();
  const size_t start = out->size();
  out->resize(start + kFrameHeaderBytes + body);
  WriteBigEndian32(static_cast<uint32_t>(body), out->data() + start);
  frame.SerializeWithCachedSizesToArray(
      reinterpret_cast<uint8_t*>(out->data() + start + kFrameHeaderBytes));
}

std::string EncodeFrame(const im::v1::Frame& frame) {
  std::string out;
  AppendFrame(frame, &out);
  return out;
}

std::string EncodeSerializedFrame(std::string_view serialized_frame) {
  std::string out(kFrameHeaderBytes + serialized_frame.size(), '\0');
  WriteBigEndian32(static_cast<uint32_t>(serialized_frame.size()), out.data());
  std::copy(serialized_frame.begin(), serialized_frame.end(), out.begin() + kFrameHeaderBytes);
  return out;
}

im::v1::Code DecodeErrorCode(DecodeError error) {
  switch (error) {
    case DecodeError::kNone:
      return im::v1::OK;
    case DecodeError::kFrameTooLarge:
      return im::v1::FRAME_TOO_LARGE;
    case DecodeError::kZeroLength:
    case DecodeError::kMalformed:
      return im::v1::MALFORMED_FRAME;
  }
  return im::v1::MALFORMED_FRAME;
}

std::string_view DecodeErrorName(DecodeError error) {
  switch (error) {
    case DecodeError::kNone:
      return "none";
    case DecodeError::kZeroLength:
      return "zero-length frame";
    case DecodeError::kFrameTooLarge:
      return "frame too large";
    case DecodeError::kMalformed:
      return "malformed frame";
  }
  return "unknown";
}

FrameDecoder::FrameDecoder(uint32_t max_frame_bytes) : max_frame_bytes_(max_frame_bytes) {}

DecodeError FrameDecoder::CheckLength(uint32_t length) const {
  if (length == 0) return DecodeError::kZeroLength;
  if (length > max_frame_bytes_) return DecodeError::kFrameTooLarge;
  return DecodeError::kNone;
}

size_t FrameDecoder::DecodeWholeFrames(std::string_view data, FrameSink sink, DecodeError* error,
                                       bool* stopped) {
  size_t offset = 0;
  while (data.size() - offset >= kFrameHeaderBytes) {
    const uint32_t length = ReadBigEndian32(data.data() + offset);
    if (DecodeError e = CheckLength(length); e != DecodeError::kNone) {
      *error = e;
      return offset;
    }
    if (data.size() - offset - kFrameHeaderBytes < length) break;
    im::v1::Frame frame;
    if (!frame.ParseFromArray(data.data() + offset + kFrameHeaderBytes, static_cast<int>(length))) {
      *error = DecodeError::kMalformed;
      return offset;
    }
    offset += kFrameHeaderBytes + length;
    if (!sink(std::move(frame))) {
      *stopped = true;
      return offset;
    }
  }
  return offset;
}

DecodeError FrameDecoder::Feed(std::string_view bytes, FrameSink sink) {
  if (failed_ != DecodeError::kNone) return failed_;
  DecodeError error = DecodeError::kNone;
  bool stopped = false;

  if (!pending_.empty()) {
    // Complete the header first, then exactly the one frame it announces.
    if (pending_.size() < kFrameHeaderBytes) {
      const size_t take = std::min(kFrameHeaderBytes - pending_.size(), bytes.size());
      pending_.append(bytes.data(), take);
      bytes.remove_prefix(take);
      if (pending_.size() < kFrameHeaderBytes) return DecodeError::kNone;
      if (DecodeError e = CheckLength(ReadBigEndian32(pending_.data())); e != DecodeError::kNone) {
        failed_ = e;
        return e;
      }
    }
    const size_t frame_total = kFrameHeaderBytes + ReadBigEndian32(pending_.data());
    const size_t take = std::min(frame_total - pending_.size(), bytes.size());
    pending_.append(bytes.data(), take);
    bytes.remove_prefix(take);
    if (pending_.size() < frame_total) return DecodeError::kNone;
    const std::string whole = std::move(pending_);
    std::string().swap(pending_);
    DecodeWholeFrames(whole, sink, &error, &stopped);
    if (error != DecodeError::kNone) {
      failed_ = error;
      return error;
    }
    if (stopped) return DecodeError::kNone;
  }

  const size_t consumed = DecodeWholeFrames(bytes, sink, &error, &stopped);
  if (error != DecodeError::kNone) {
    failed_ = error;
    return error;
  }
  if (stopped) return DecodeError::kNone;
  bytes.remove_prefix(consumed);
  // Hold only the bytes that arrived: reserving what a header announces would let a client pin
  // max_frame_bytes per connection by sending headers alone.
  pending_.append(bytes.data(), bytes.size());
  return DecodeError::kNone;
}

}  // namespace im::common
