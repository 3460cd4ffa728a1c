#include "common/websocket/wslay_frame_writer.h"

#include <wslay/wslay.h>

#include <random>

namespace im::common {

namespace {

// wslay's frame writer for one thread. Its send callback takes every byte, so each frame is
// written whole and the context is ready for the next. wslay passes an unmasked payload back as
// it came: the callback tells it apart from the header by its address.
class WslayFrameWriter {
 public:
  static WslayFrameWriter& ForThisThread(bool masked) {
    thread_local WslayFrameWriter masking;
    thread_local WslayFrameWriter plain;
    return masked ? masking : plain;
  }

  std::string Write(const FrameToWrite& frame) {
    std::string out;
    out_ = &out;
    payload_ = reinterpret_cast<const uint8_t*>(frame.payload.data());
    with_payload_ = frame.with_payload;
    wslay_frame_iocb iocb{};
    iocb.fin = frame.fin ? 1 : 0;
    iocb.rsv = frame.rsv;
    iocb.opcode = frame.opcode;
    iocb.mask = frame.masked ? 1 : 0;
    iocb.payload_length = frame.payload.size();
    iocb.data = payload_;
    iocb.data_length = frame.payload.size();
    wslay_frame_send(context_, &iocb);  // cannot fail: Append takes every byte
    out_ = nullptr;
    return out;
  }

  ~WslayFrameWriter() { wslay_frame_context_free(context_); }
  WslayFrameWriter(const WslayFrameWriter&) = delete;
  WslayFrameWriter& operator=(const WslayFrameWriter&) = delete;

 private:
  WslayFrameWriter() {
    static constexpr wslay_frame_callbacks kCallbacks{&WslayFrameWriter::Append, nullptr,
                                                      &WslayFrameWriter::RandomMask};
    wslay_frame_context_init(&context_, &kCallbacks, this);
  }

  static ssize_t Append(const uint8_t* data, size_t length, int, void* user) {
    auto* self = static_cast<WslayFrameWriter*>(user);
    if (data != self->payload_ || self->with_payload_) {
      self->out_->append(reinterpret_cast<const char*>(data), length);
    }
    return static_cast<ssize_t>(length);
  }

  static int RandomMask(uint8_t* buf, size_t length, void* user) {
    std::mt19937& random = static_cast<WslayFrameWriter*>(user)->random_;
    for (size_t i = 0; i < length; ++i) buf[i] = static_cast<uint8_t>(random());
    return 0;
  }

  wslay_frame_context* context_ = nullptr;
  std::string* out_ = nullptr;
  const uint8_t* payload_ = nullptr;
  bool with_payload_ = true;
  std::mt19937 random_{std::random_device{}()};
};

}  // namespace

std::string WriteFrame(const FrameToWrite& frame) {
  return WslayFrameWriter::ForThisThread(frame.masked).Write(frame);
}

}  // namespace im::common
