// libFuzzer target for FrameDecoder.
//
// Input layout: 4 control bytes, then the byte stream a client would send.
//   control[0]      the small frame limit of the second pass: 8 + control[0] bytes
//   control[1..3]   chunk sizes, used in turn: n feeds min(n, rest) bytes (0 feeds nothing, then
//                   one byte); 255 feeds all that is left
// The stream is decoded three times: with the default limit, with the small limit, and with a sink
// that stops after 1 + control[0] % 4 frames. Each run must match a straightforward reference
// decoder that sees the whole stream at once, so chunking can never change what comes out. Every
// decoded frame is re-encoded and decoded again and must come back identical.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/frame_codec.h"
#include "google/protobuf/stubs/logging.h"
#include "google/protobuf/util/message_differencer.h"
#include "im/v1/client.pb.h"

namespace {

using im::common::DecodeError;
using im::common::FrameDecoder;
using im::common::kFrameHeaderBytes;
using im::v1::Frame;

constexpr size_t kControlBytes = 4;

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "frame_decoder_fuzz: %s\n", what);
  std::abort();
}

void Check(bool ok, const char* what) {
  if (!ok) Fail(what);
}

struct Result {
  std::vector<std::string> frames;  // each decoded frame, serialized
  DecodeError error = DecodeError::kNone;
  size_t buffered = 0;  // bytes held at the end when there was no error and no stop
};

uint32_t ReadLength(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

// The whole stream in one buffer, decoded the obvious way.
Result ReferenceDecode(std::string_view stream, uint32_t max_frame_bytes, size_t stop_after) {
  Result r;
  const auto* p = reinterpret_cast<const uint8_t*>(stream.data());
  size_t offset = 0;
  while (stream.size() - offset >= kFrameHeaderBytes) {
    const uint32_t length = ReadLength(p + offset);
    if (length == 0) {
      r.error = DecodeError::kZeroLength;
      return r;
    }
    if (length > max_frame_bytes) {
      r.error = DecodeError::kFrameTooLarge;
      return r;
    }
    if (stream.size() - offset - kFrameHeaderBytes < length) break;
    Frame frame;
    if (!frame.ParseFromArray(p + offset + kFrameHeaderBytes, static_cast<int>(length))) {
      r.error = DecodeError::kMalformed;
      return r;
    }
    offset += kFrameHeaderBytes + length;
    r.frames.push_back(frame.SerializeAsString());
    if (r.frames.size() == stop_after) return r;
  }
  r.buffered = stream.size() - offset;
  return r;
}

// Encodes `frame`, decodes the encoding, and checks that the same frame comes back.
void CheckReencoding(const Frame& frame) {
  const std::string serialized = frame.SerializeAsString();
  const std::string encoded = im::common::EncodeFrame(frame);
  Check(encoded == im::common::EncodeSerializedFrame(serialized),
        "EncodeFrame != EncodeSerializedFrame");
  Check(encoded.size() == kFrameHeaderBytes + serialized.size(), "encoded size");

  // Canonical re-serialization may be longer than what arrived (a 5-byte negative enum becomes
  // 10 bytes), so the second decoder's limit fits the frame.
  const uint32_t limit = std::max<uint32_t>(im::common::kDefaultMaxFrameBytes,
                                            static_cast<uint32_t>(serialized.size()));
  FrameDecoder decoder(limit);
  std::vector<Frame> again;
  const DecodeError error = decoder.Feed(encoded, [&](Frame&& f) {
    again.push_back(std::move(f));
    return true;
  });
  if (serialized.empty()) {
    // A frame with every field at its default serializes to nothing, and N = 0 is invalid.
    Check(error == DecodeError::kZeroLength && again.empty(), "empty frame re-encoding");
    return;
  }
  Check(error == DecodeError::kNone, "re-encoding does not decode");
  Check(again.size() == 1, "re-encoding decodes to a frame count other than 1");
  Check(decoder.buffered_bytes() == 0, "re-encoding leaves bytes buffered");
  Check(google::protobuf::util::MessageDifferencer::Equals(frame, again[0]),
        "re-decoded frame differs");
  Check(again[0].SerializeAsString() == serialized, "re-decoded frame serializes differently");
}

Result ChunkedDecode(std::string_view stream, std::string_view control, uint32_t max_frame_bytes,
                     size_t stop_after) {
  Result r;
  FrameDecoder decoder(max_frame_bytes);
  bool stopped = false;
  auto sink = [&](Frame&& frame) {
    Check(!stopped, "sink called after it returned false");
    Check(r.error == DecodeError::kNone, "sink called after an error");
    CheckReencoding(frame);
    r.frames.push_back(frame.SerializeAsString());
    stopped = r.frames.size() == stop_after;
    return !stopped;
  };

  size_t pos = 0;
  for (size_t k = 0; pos < stream.size() && !stopped && r.error == DecodeError::kNone; ++k) {
    size_t n = control.empty() ? stream.size() : static_cast<uint8_t>(control[k % control.size()]);
    if (n == 255) n = stream.size();
    if (n == 0) {
      r.error = decoder.Feed({}, sink);
      n = 1;
      if (r.error != DecodeError::kNone) Fail("empty Feed failed");
    }
    n = std::min(n, stream.size() - pos);
    const size_t frames_before = r.frames.size();
    r.error = decoder.Feed(stream.substr(pos, n), sink);
    pos += n;
    if (r.error == DecodeError::kNone && !stopped) {
      // Unless stopped, a successful Feed holds exactly the bytes after the last complete frame.
      Check(decoder.buffered_bytes() <= kFrameHeaderBytes + max_frame_bytes, "buffer above limit");
    }
    if (r.error != DecodeError::kNone) {
      // The error is sticky and the sink is not called again.
      const size_t frames_at_error = r.frames.size();
      Check(frames_at_error >= frames_before, "frames lost");
      Check(decoder.Feed(stream.substr(pos), sink) == r.error, "error not sticky");
      Check(decoder.Feed(std::string_view("\x00\x00\x00\x01\x00", 5), sink) == r.error,
            "error not sticky");
      Check(r.frames.size() == frames_at_error, "frames after an error");
    }
  }
  if (r.error == DecodeError::kNone && !stopped) r.buffered = decoder.buffered_bytes();
  return r;
}

void CheckSame(const Result& expected, const Result& actual, bool stopped_early) {
  Check(expected.error == actual.error, "error differs from the reference");
  Check(expected.frames == actual.frames, "frames differ from the reference");
  if (!stopped_early && expected.error == DecodeError::kNone) {
    Check(expected.buffered == actual.buffered, "buffered bytes differ from the reference");
  }
}

void Run(std::string_view stream, std::string_view control, uint32_t max_frame_bytes,
         size_t stop_after) {
  const Result expected = ReferenceDecode(stream, max_frame_bytes, stop_after);
  const Result actual = ChunkedDecode(stream, control, max_frame_bytes, stop_after);
  CheckSame(expected, actual, expected.frames.size() == stop_after);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  // libprotobuf logs an ERROR for every string field with invalid UTF-8; at fuzzing rates that is
  // most of the output and a good part of the time.
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::string_view control = input.substr(0, std::min(size, kControlBytes));
  const std::string_view chunks = control.substr(std::min<size_t>(1, control.size()));
  const std::string_view stream = input.substr(control.size());
  const uint32_t small_limit = 8 + (control.empty() ? 0 : static_cast<uint8_t>(control[0]));
  const size_t stop_after = 1 + (control.empty() ? 0 : static_cast<uint8_t>(control[0]) % 4);

  constexpr size_t kNoStop = static_cast<size_t>(-1);
  Run(stream, chunks, im::common::kDefaultMaxFrameBytes, kNoStop);
  Run(stream, chunks, small_limit, kNoStop);
  Run(stream, chunks, im::common::kDefaultMaxFrameBytes, stop_after);
  return 0;
}
