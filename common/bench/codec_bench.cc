// Frame codec throughput: encode, decode one frame per Feed, and decode a 64 KiB read buffer full
// of frames (what one socket read delivers under load). Frames are SendReq with a body of the
// argument's size. Items are frames; bytes are encoded bytes including the 4-byte header.

#include <cstddef>
#include <cstdint>
#include <string>

#include "benchmark/benchmark.h"
#include "common/frame_codec.h"
#include "im/v1/client.pb.h"

namespace im::common {
namespace {

im::v1::Frame MakeSendFrame(size_t body_bytes) {
  im::v1::Frame frame;
  frame.set_id(123456);
  auto* req = frame.mutable_send_req();
  req->set_conv_id("s:1000001:1000002");
  req->set_client_msg_id("7f3a9c1e-5b2d-4e8a-9c0f-1a2b3c4d5e6f");
  req->set_type(im::v1::TEXT);
  req->set_body(std::string(body_bytes, 'x'));
  return frame;
}

void BM_EncodeFrame(benchmark::State& state) {
  const im::v1::Frame frame = MakeSendFrame(static_cast<size_t>(state.range(0)));
  size_t bytes = 0;
  for (auto _ : state) {
    std::string encoded = EncodeFrame(frame);
    bytes += encoded.size();
    benchmark::DoNotOptimize(encoded.data());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
}
BENCHMARK(BM_EncodeFrame)->Arg(64)->Arg(1024);

// Appends into a buffer that keeps its capacity, as a connection's output buffer does.
void BM_AppendFrameReusedBuffer(benchmark::State& state) {
  const im::v1::Frame frame = MakeSendFrame(static_cast<size_t>(state.range(0)));
  std::string out;
  size_t bytes = 0;
  for (auto _ : state) {
    out.clear();
    AppendFrame(frame, &out);
    bytes += out.size();
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
}
BENCHMARK(BM_AppendFrameReusedBuffer)->Arg(64)->Arg(1024);

void BM_DecodeOneFramePerFeed(benchmark::State& state) {
  const std::string encoded = EncodeFrame(MakeSendFrame(static_cast<size_t>(state.range(0))));
  FrameDecoder decoder;
  int64_t frames = 0;
  for (auto _ : state) {
    const DecodeError error = decoder.Feed(encoded, [&](im::v1::Frame&& frame) {
      benchmark::DoNotOptimize(frame.send_req().body().data());
      ++frames;
      return true;
    });
    if (error != DecodeError::kNone) {
      state.SkipWithError("decode failed");
      break;
    }
  }
  state.SetItemsProcessed(frames);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(encoded.size()));
}
BENCHMARK(BM_DecodeOneFramePerFeed)->Arg(64)->Arg(1024);

// As many whole frames as fit in 64 KiB, handed to one Feed.
void BM_DecodeCoalesced64KiB(benchmark::State& state) {
  const std::string one = EncodeFrame(MakeSendFrame(static_cast<size_t>(state.range(0))));
  std::string buffer;
  while (buffer.size() + one.size() <= 64 * 1024) buffer += one;
  const int64_t frames_per_buffer = static_cast<int64_t>(buffer.size() / one.size());
  FrameDecoder decoder;
  int64_t frames = 0;
  for (auto _ : state) {
    const DecodeError error = decoder.Feed(buffer, [&](im::v1::Frame&& frame) {
      benchmark::DoNotOptimize(frame.send_req().body().data());
      ++frames;
      return true;
    });
    if (error != DecodeError::kNone) {
      state.SkipWithError("decode failed");
      break;
    }
  }
  state.SetItemsProcessed(frames);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(buffer.size()));
  state.counters["frames_per_feed"] = static_cast<double>(frames_per_buffer);
}
BENCHMARK(BM_DecodeCoalesced64KiB)->Arg(64)->Arg(1024);

}  // namespace
}  // namespace im::common

BENCHMARK_MAIN();
