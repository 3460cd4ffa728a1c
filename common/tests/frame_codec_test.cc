#include "common/frame_codec.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "google/protobuf/stubs/logging.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "im/v1/client.pb.h"

namespace im::common {
namespace {

using im::v1::Frame;

Frame MakeLoginReq(uint64_t id) {
  Frame frame;
  frame.set_id(id);
  auto* req = frame.mutable_login_req();
  req->set_token("eyJ1aWQiOiJhbGljZSJ9.c2lnbmF0dXJl");
  req->set_device("phone-1");
  req->set_platform("ios");
  req->set_client_version("1.2.3");
  return frame;
}

Frame MakeSendReq(uint64_t id, size_t body_bytes) {
  Frame frame;
  frame.set_id(id);
  auto* req = frame.mutable_send_req();
  req->set_conv_id("s:alice:bob");
  req->set_client_msg_id("cm-" + std::to_string(id));
  req->set_type(im::v1::TEXT);
  std::string body(body_bytes, '\0');
  for (size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>(i * 31 + 7);
  req->set_body(std::move(body));
  return frame;
}

Frame MakePing(uint64_t id) {
  Frame frame;
  frame.set_id(id);
  frame.mutable_ping()->set_client_time_ms(1'700'000'000'123);
  return frame;
}

Frame MakeMessagePush(int messages) {
  Frame frame;  // pushes carry id 0
  auto* push = frame.mutable_message_push();
  for (int i = 0; i < messages; ++i) {
    auto* m = push->add_messages();
    m->set_conv_id("g:42");
    m->set_seq(100 + i);
    m->set_msg_id(0x0123456789ABCDEFull + i);
    m->set_sender("user-" + std::to_string(i));
    m->set_client_msg_id("c-" + std::to_string(i));
    m->set_type(im::v1::TEXT);
    m->set_body("hello " + std::to_string(i));
    m->set_created_ms(1'700'000'000'000 + i);
  }
  return frame;
}

// The mixed stream the split tests feed: different bodies and sizes, one of them above 1 KiB.
std::vector<Frame> SampleFrames() {
  return {MakeLoginReq(1), MakeSendReq(2, 1024), MakePing(3), MakeMessagePush(5)};
}

std::string EncodeAll(const std::vector<Frame>& frames) {
  std::string out;
  for (const Frame& f : frames) AppendFrame(f, &out);
  return out;
}

// Offsets in the encoded stream at which each frame ends.
std::vector<size_t> FrameEnds(const std::vector<Frame>& frames) {
  std::vector<size_t> ends;
  size_t end = 0;
  for (const Frame& f : frames) {
    end += kFrameHeaderBytes + f.ByteSizeLong();
    ends.push_back(end);
  }
  return ends;
}

::testing::AssertionResult SameFrame(const Frame& expected, const Frame& actual) {
  if (google::protobuf::util::MessageDifferencer::Equals(expected, actual)) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << "expected:\n"
                                       << expected.DebugString() << "actual:\n"
                                       << actual.DebugString();
}

void ExpectSameFrames(const std::vector<Frame>& expected, const std::vector<Frame>& actual) {
  ASSERT_EQ(expected.size(), actual.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_TRUE(SameFrame(expected[i], actual[i])) << "frame " << i;
  }
}

// Feeds `bytes` and appends every decoded frame to `out`.
DecodeError FeedInto(FrameDecoder& decoder, std::string_view bytes, std::vector<Frame>* out) {
  return decoder.Feed(bytes, [out](Frame&& frame) {
    out->push_back(std::move(frame));
    return true;
  });
}

DecodeError FeedExpectingNoFrame(FrameDecoder& decoder, std::string_view bytes) {
  return decoder.Feed(bytes, [](Frame&& frame) {
    ADD_FAILURE() << "unexpected frame: " << frame.DebugString();
    return true;
  });
}

std::string Header(uint32_t length) {
  std::string h(kFrameHeaderBytes, '\0');
  h[0] = static_cast<char>(length >> 24);
  h[1] = static_cast<char>(length >> 16);
  h[2] = static_cast<char>(length >> 8);
  h[3] = static_cast<char>(length);
  return h;
}

std::string RawFrame(std::string_view body) {
  return Header(static_cast<uint32_t>(body.size())) + std::string(body);
}

// A SendReq frame whose serialization is exactly `target` bytes (varint lengths make some body
// sizes skip a total, so the conversation id absorbs the difference).
Frame MakeFrameOfSize(size_t target) {
  for (size_t body = target > 64 ? target - 64 : 0; body <= target; ++body) {
    for (size_t pad = 0; pad < 3; ++pad) {
      Frame frame;
      frame.set_id(9);
      frame.mutable_send_req()->set_conv_id("g:" + std::string(pad + 1, '7'));
      frame.mutable_send_req()->set_body(std::string(body, 'x'));
      if (frame.ByteSizeLong() == target) return frame;
    }
  }
  ADD_FAILURE() << "no frame of " << target << " bytes";
  return Frame();
}

// ---- encoding ----

TEST(FrameCodecEncodeTest, WritesBigEndianLengthThenSerializedFrame) {
  const Frame frame = MakeSendReq(7, 1024);
  const std::string serialized = frame.SerializeAsString();
  ASSERT_GT(serialized.size(), 1024u);
  ASSERT_LT(serialized.size(), 65536u);

  const std::string encoded = EncodeFrame(frame);
  ASSERT_EQ(encoded.size(), kFrameHeaderBytes + serialized.size());
  EXPECT_EQ(static_cast<unsigned char>(encoded[0]), 0u);
  EXPECT_EQ(static_cast<unsigned char>(encoded[1]), 0u);
  EXPECT_EQ(static_cast<unsigned char>(encoded[2]), serialized.size() >> 8);
  EXPECT_EQ(static_cast<unsigned char>(encoded[3]), serialized.size() & 0xFF);
  EXPECT_EQ(encoded.substr(kFrameHeaderBytes), serialized);
}

TEST(FrameCodecEncodeTest, AppendFrameKeepsWhatIsAlreadyThere) {
  std::string out = "prefix";
  AppendFrame(MakePing(1), &out);
  AppendFrame(MakeLoginReq(2), &out);
  EXPECT_EQ(out, "prefix" + EncodeFrame(MakePing(1)) + EncodeFrame(MakeLoginReq(2)));
}

TEST(FrameCodecEncodeTest, EncodeSerializedFrameEqualsEncodeFrame) {
  for (const Frame& frame : SampleFrames()) {
    EXPECT_EQ(EncodeSerializedFrame(frame.SerializeAsString()), EncodeFrame(frame))
        << frame.DebugString();
  }
}

TEST(FrameCodecEncodeTest, RoundTripsEveryKindOfFrame) {
  std::vector<Frame> frames = SampleFrames();
  Frame error;
  error.mutable_error()->set_code(im::v1::SLOW_CONSUMER);
  error.mutable_error()->set_message("too slow");
  frames.push_back(error);
  Frame resp;
  resp.set_id(0xFFFFFFFFFFFFFFFFull);
  resp.mutable_send_resp()->mutable_status()->set_code(im::v1::OK);
  resp.mutable_send_resp()->set_msg_id(0xFEDCBA9876543210ull);
  frames.push_back(resp);
  Frame empty_body;  // an id and an empty oneof still serialize to at least one byte
  empty_body.set_id(5);
  frames.push_back(empty_body);
  Frame empty_pong;  // a oneof member with all fields default still serializes its tag
  empty_pong.mutable_pong();
  frames.push_back(empty_pong);

  for (const Frame& frame : frames) {
    FrameDecoder decoder;
    std::vector<Frame> out;
    EXPECT_EQ(FeedInto(decoder, EncodeFrame(frame), &out), DecodeError::kNone);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_TRUE(SameFrame(frame, out[0]));
    EXPECT_EQ(out[0].body_case(), frame.body_case());
    EXPECT_EQ(decoder.buffered_bytes(), 0u);
  }
}

// ---- decoding a stream split in every way ----

TEST(FrameCodecStreamTest, DecodesCoalescedFramesInOneFeed) {
  const std::vector<Frame> frames = SampleFrames();
  FrameDecoder decoder;
  std::vector<Frame> out;
  EXPECT_EQ(FeedInto(decoder, EncodeAll(frames), &out), DecodeError::kNone);
  ExpectSameFrames(frames, out);
  EXPECT_EQ(decoder.buffered_bytes(), 0u);
}

TEST(FrameCodecStreamTest, DecodesStreamSplitAtEveryBytePosition) {
  const std::vector<Frame> frames = SampleFrames();
  const std::string stream = EncodeAll(frames);
  const std::vector<size_t> ends = FrameEnds(frames);
  ASSERT_EQ(ends.back(), stream.size());

  for (size_t split = 0; split <= stream.size(); ++split) {
    SCOPED_TRACE(::testing::Message() << "split at " << split);
    size_t complete = 0;  // frames whose last byte is in the first part
    size_t boundary = 0;  // where the last of them ends
    while (complete < ends.size() && ends[complete] <= split) boundary = ends[complete++];

    FrameDecoder decoder;
    std::vector<Frame> out;
    const std::string_view all(stream);
    ASSERT_EQ(FeedInto(decoder, all.substr(0, split), &out), DecodeError::kNone);
    ASSERT_EQ(out.size(), complete);
    ASSERT_EQ(decoder.buffered_bytes(), split - boundary);

    ASSERT_EQ(FeedInto(decoder, all.substr(split), &out), DecodeError::kNone);
    ExpectSameFrames(frames, out);
    ASSERT_EQ(decoder.buffered_bytes(), 0u);
  }
}

TEST(FrameCodecStreamTest, DecodesStreamFedByteByByte) {
  const std::vector<Frame> frames = SampleFrames();
  const std::string stream = EncodeAll(frames);
  const std::vector<size_t> ends = FrameEnds(frames);

  FrameDecoder decoder;
  std::vector<Frame> out;
  size_t complete = 0;
  size_t boundary = 0;
  for (size_t i = 0; i < stream.size(); ++i) {
    SCOPED_TRACE(::testing::Message() << "byte " << i);
    ASSERT_EQ(FeedInto(decoder, std::string_view(stream).substr(i, 1), &out), DecodeError::kNone);
    if (i + 1 == ends[complete]) boundary = ends[complete++];
    ASSERT_EQ(out.size(), complete);
    ASSERT_EQ(decoder.buffered_bytes(), i + 1 - boundary);
  }
  ExpectSameFrames(frames, out);
  EXPECT_EQ(decoder.buffered_bytes(), 0u);
}

TEST(FrameCodecStreamTest, DecodesStreamInRandomChunks) {
  std::vector<Frame> frames;
  for (int round = 0; round < 8; ++round) {
    for (Frame& f : SampleFrames()) frames.push_back(std::move(f));
  }
  const std::string stream = EncodeAll(frames);
  std::mt19937 rng(12345);  // fixed seed: the test is deterministic
  for (int trial = 0; trial < 50; ++trial) {
    std::uniform_int_distribution<size_t> chunk(0, trial % 2 == 0 ? 16 : 3000);
    FrameDecoder decoder;
    std::vector<Frame> out;
    for (size_t pos = 0; pos < stream.size();) {
      const size_t n = std::min(chunk(rng), stream.size() - pos);
      ASSERT_EQ(FeedInto(decoder, std::string_view(stream).substr(pos, n), &out),
                DecodeError::kNone);
      pos += n;
    }
    ExpectSameFrames(frames, out);
    EXPECT_EQ(decoder.buffered_bytes(), 0u);
  }
}

TEST(FrameCodecStreamTest, EmptyFeedChangesNothing) {
  const std::string encoded = EncodeFrame(MakeLoginReq(1));
  FrameDecoder decoder;
  std::vector<Frame> out;
  EXPECT_EQ(FeedInto(decoder, {}, &out), DecodeError::kNone);
  EXPECT_EQ(decoder.buffered_bytes(), 0u);
  for (size_t split : {size_t{2}, size_t{6}}) {  // inside the header, inside the body
    EXPECT_EQ(FeedInto(decoder, std::string_view(encoded).substr(0, split), &out),
              DecodeError::kNone);
    EXPECT_EQ(FeedInto(decoder, {}, &out), DecodeError::kNone);
    EXPECT_EQ(decoder.buffered_bytes(), split);
    EXPECT_EQ(FeedInto(decoder, std::string_view(encoded).substr(split), &out), DecodeError::kNone);
    EXPECT_EQ(decoder.buffered_bytes(), 0u);
  }
  ASSERT_EQ(out.size(), 2u);
  EXPECT_TRUE(SameFrame(MakeLoginReq(1), out[0]));
  EXPECT_TRUE(SameFrame(MakeLoginReq(1), out[1]));
}

TEST(FrameCodecStreamTest, CompletesPendingFrameAndDecodesWholeFramesAfterItInOneFeed) {
  const std::vector<Frame> frames = SampleFrames();
  const std::string stream = EncodeAll(frames);
  const size_t first_end = FrameEnds(frames)[0];
  FrameDecoder decoder;
  std::vector<Frame> out;
  // The tail of frame 0, frames 1 and 2 whole, and half of frame 3.
  const size_t cut = stream.size() - 10;
  ASSERT_EQ(FeedInto(decoder, std::string_view(stream).substr(0, first_end - 1), &out),
            DecodeError::kNone);
  ASSERT_EQ(
      FeedInto(decoder, std::string_view(stream).substr(first_end - 1, cut - first_end + 1), &out),
      DecodeError::kNone);
  EXPECT_EQ(out.size(), 3u);
  EXPECT_EQ(decoder.buffered_bytes(), cut - FrameEnds(frames)[2]);
  ASSERT_EQ(FeedInto(decoder, std::string_view(stream).substr(cut), &out), DecodeError::kNone);
  ExpectSameFrames(frames, out);
  EXPECT_EQ(decoder.buffered_bytes(), 0u);
}

TEST(FrameCodecStreamTest, DecodesFrameNearTheDefaultLimitSplitInTwo) {
  const Frame big = MakeSendReq(1, 60 * 1024);
  const std::string encoded = EncodeFrame(big);
  FrameDecoder decoder;
  std::vector<Frame> out;
  ASSERT_EQ(FeedInto(decoder, std::string_view(encoded).substr(0, 30000), &out),
            DecodeError::kNone);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(decoder.buffered_bytes(), 30000u);
  ASSERT_EQ(FeedInto(decoder, std::string_view(encoded).substr(30000), &out), DecodeError::kNone);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(SameFrame(big, out[0]));
  EXPECT_EQ(decoder.buffered_bytes(), 0u);
}

// ---- length limits ----

TEST(FrameCodecLimitTest, DefaultLimitIs64KiB) {
  FrameDecoder decoder;
  EXPECT_EQ(decoder.max_frame_bytes(), kDefaultMaxFrameBytes);
  EXPECT_EQ(kDefaultMaxFrameBytes, 64u * 1024u);
  EXPECT_EQ(FrameDecoder(100).max_frame_bytes(), 100u);
}

TEST(FrameCodecLimitTest, ZeroLengthIsAnError) {
  FrameDecoder decoder;
  EXPECT_EQ(FeedExpectingNoFrame(decoder, Header(0)), DecodeError::kZeroLength);
}

TEST(FrameCodecLimitTest, ZeroLengthAfterValidFrameDeliversTheValidFrameFirst) {
  FrameDecoder decoder;
  std::vector<Frame> out;
  EXPECT_EQ(
      FeedInto(decoder, EncodeFrame(MakePing(1)) + Header(0) + EncodeFrame(MakePing(2)), &out),
      DecodeError::kZeroLength);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(SameFrame(MakePing(1), out[0]));
}

TEST(FrameCodecLimitTest, ZeroLengthSplitHeaderIsAnError) {
  const std::string header = Header(0);
  for (size_t split = 1; split < kFrameHeaderBytes; ++split) {
    SCOPED_TRACE(::testing::Message() << "split at " << split);
    FrameDecoder decoder;
    EXPECT_EQ(FeedExpectingNoFrame(decoder, header.substr(0, split)), DecodeError::kNone);
    EXPECT_EQ(FeedExpectingNoFrame(decoder, header.substr(split)), DecodeError::kZeroLength);
  }
}

TEST(FrameCodecLimitTest, LengthAboveLimitFailsAsSoonAsTheHeaderArrives) {
  {
    FrameDecoder decoder(100);
    EXPECT_EQ(FeedExpectingNoFrame(decoder, Header(101)), DecodeError::kFrameTooLarge);
  }
  {
    FrameDecoder decoder;
    EXPECT_EQ(FeedExpectingNoFrame(decoder, Header(kDefaultMaxFrameBytes + 1)),
              DecodeError::kFrameTooLarge);
  }
  {
    FrameDecoder decoder;
    EXPECT_EQ(FeedExpectingNoFrame(decoder, Header(0xFFFFFFFFu)), DecodeError::kFrameTooLarge);
  }
  {
    // The header is followed by some of the announced bytes: still rejected, nothing buffered.
    FrameDecoder decoder;
    EXPECT_EQ(FeedExpectingNoFrame(decoder, Header(0x7FFFFFFFu) + std::string(1000, 'a')),
              DecodeError::kFrameTooLarge);
  }
}

TEST(FrameCodecLimitTest, LengthAboveLimitInSplitHeaderFails) {
  const std::string header = Header(kDefaultMaxFrameBytes + 1);
  for (size_t split = 0; split <= kFrameHeaderBytes; ++split) {
    SCOPED_TRACE(::testing::Message() << "split at " << split);
    FrameDecoder decoder;
    const DecodeError first = FeedExpectingNoFrame(decoder, header.substr(0, split));
    if (split < kFrameHeaderBytes) {
      EXPECT_EQ(first, DecodeError::kNone);
      EXPECT_EQ(decoder.buffered_bytes(), split);
      EXPECT_EQ(FeedExpectingNoFrame(decoder, header.substr(split)), DecodeError::kFrameTooLarge);
    } else {
      EXPECT_EQ(first, DecodeError::kFrameTooLarge);
    }
  }
}

TEST(FrameCodecLimitTest, LengthAboveLimitInHeaderSplitAfterValidFrameFails) {
  const std::string stream = EncodeFrame(MakePing(1)) + Header(kDefaultMaxFrameBytes + 1);
  const size_t frame_end = stream.size() - kFrameHeaderBytes;
  for (size_t split = frame_end; split < stream.size(); ++split) {
    SCOPED_TRACE(::testing::Message() << "split at " << split);
    FrameDecoder decoder;
    std::vector<Frame> out;
    EXPECT_EQ(FeedInto(decoder, std::string_view(stream).substr(0, split), &out),
              DecodeError::kNone);
    EXPECT_EQ(out.size(), 1u);
    EXPECT_EQ(FeedInto(decoder, std::string_view(stream).substr(split), &out),
              DecodeError::kFrameTooLarge);
    EXPECT_EQ(out.size(), 1u);
  }
}

TEST(FrameCodecLimitTest, FrameOfExactlyTheLimitIsAccepted) {
  for (uint32_t limit : {uint32_t{200}, kDefaultMaxFrameBytes}) {
    SCOPED_TRACE(::testing::Message() << "limit " << limit);
    const Frame frame = MakeFrameOfSize(limit);
    ASSERT_EQ(frame.ByteSizeLong(), limit);
    const std::string encoded = EncodeFrame(frame);

    FrameDecoder whole(limit);
    std::vector<Frame> out;
    EXPECT_EQ(FeedInto(whole, encoded, &out), DecodeError::kNone);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_TRUE(SameFrame(frame, out[0]));

    // Through the pending buffer too: the header and then the body in pieces.
    FrameDecoder split(limit);
    out.clear();
    EXPECT_EQ(FeedInto(split, std::string_view(encoded).substr(0, 3), &out), DecodeError::kNone);
    EXPECT_EQ(FeedInto(split, std::string_view(encoded).substr(3, 100), &out), DecodeError::kNone);
    EXPECT_EQ(FeedInto(split, std::string_view(encoded).substr(103), &out), DecodeError::kNone);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_TRUE(SameFrame(frame, out[0]));
    EXPECT_EQ(split.buffered_bytes(), 0u);

    // One byte more is refused.
    FrameDecoder over(limit - 1);
    EXPECT_EQ(FeedExpectingNoFrame(over, encoded), DecodeError::kFrameTooLarge);
  }
}

// ---- malformed bytes ----

struct MalformedCase {
  const char* name;
  std::string body;
};

std::vector<MalformedCase> MalformedBodies() {
  return {
      {"all 0xFF", std::string(8, '\xFF')},
      {"truncated varint", std::string("\x08\x80", 2)},  // id = varint with continuation bit
      {"truncated length-delimited field", std::string("\x72\x0A\x0A\x01", 4)},  // send_req
      {"field number 0", std::string("\x00\x01", 2)},
      {"end-group without start", std::string("\x0C", 1)},  // field 1, wire type 4
      {"invalid wire type", std::string("\x0F", 1)},        // field 1, wire type 7
      {"nested message with bad bytes", std::string("\x62\x02\xFF\xFF", 4)},  // ping
  };
}

TEST(FrameCodecMalformedTest, UnparsableBytesAreMalformed) {
  for (const MalformedCase& c : MalformedBodies()) {
    SCOPED_TRACE(c.name);
    Frame probe;
    ASSERT_FALSE(probe.ParseFromString(c.body)) << "the case must not parse as a Frame";
    FrameDecoder decoder;
    EXPECT_EQ(FeedExpectingNoFrame(decoder, RawFrame(c.body)), DecodeError::kMalformed);
  }
}

TEST(FrameCodecMalformedTest, MalformedFrameCompletedFromPendingBytesIsMalformed) {
  for (const MalformedCase& c : MalformedBodies()) {
    SCOPED_TRACE(c.name);
    const std::string raw = RawFrame(c.body);
    for (size_t split = 1; split < raw.size(); ++split) {
      FrameDecoder decoder;
      EXPECT_EQ(FeedExpectingNoFrame(decoder, std::string_view(raw).substr(0, split)),
                DecodeError::kNone);
      EXPECT_EQ(FeedExpectingNoFrame(decoder, std::string_view(raw).substr(split)),
                DecodeError::kMalformed);
    }
  }
}

TEST(FrameCodecMalformedTest, FramesBeforeTheMalformedOneAreDeliveredAndNoneAfter) {
  FrameDecoder decoder;
  std::vector<Frame> out;
  const std::string stream = EncodeFrame(MakePing(1)) + EncodeFrame(MakeLoginReq(2)) +
                             RawFrame(std::string(4, '\xFF')) + EncodeFrame(MakePing(3));
  EXPECT_EQ(FeedInto(decoder, stream, &out), DecodeError::kMalformed);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_TRUE(SameFrame(MakePing(1), out[0]));
  EXPECT_TRUE(SameFrame(MakeLoginReq(2), out[1]));
}

TEST(FrameCodecMalformedTest, InvalidUtf8InStringFieldIsMalformed) {
  // proto3 `string` fields must hold UTF-8; libprotobuf refuses the frame (and logs an ERROR,
  // silenced here).
  const std::string body("\x52\x03\x0A\x01\xFF", 5);  // login_req { token: "\xFF" }
  google::protobuf::LogSilencer silence;
  FrameDecoder decoder;
  EXPECT_EQ(FeedExpectingNoFrame(decoder, RawFrame(body)), DecodeError::kMalformed);
}

TEST(FrameCodecMalformedTest, UnknownFieldsAreNotMalformed) {
  // A newer client may send fields this build does not know; they must parse.
  const std::string body = MakePing(1).SerializeAsString() + std::string("\xF8\x07\x01", 3);
  FrameDecoder decoder;
  std::vector<Frame> out;
  EXPECT_EQ(FeedInto(decoder, RawFrame(body), &out), DecodeError::kNone);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].id(), 1u);
  EXPECT_TRUE(out[0].has_ping());
}

// ---- after an error ----

TEST(FrameCodecErrorTest, ErrorIsStickyAndTheSinkIsNeverCalledAgain) {
  struct Case {
    const char* name;
    std::string bytes;
    DecodeError error;
  };
  const std::vector<Case> cases = {
      {"zero length", Header(0), DecodeError::kZeroLength},
      {"too large", Header(kDefaultMaxFrameBytes + 1), DecodeError::kFrameTooLarge},
      {"malformed", RawFrame(std::string(3, '\xFF')), DecodeError::kMalformed},
  };
  const std::string valid = EncodeFrame(MakePing(1));
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    FrameDecoder decoder;
    ASSERT_EQ(FeedExpectingNoFrame(decoder, c.bytes), c.error);
    EXPECT_EQ(FeedExpectingNoFrame(decoder, valid), c.error);
    EXPECT_EQ(FeedExpectingNoFrame(decoder, valid + valid), c.error);
    EXPECT_EQ(FeedExpectingNoFrame(decoder, std::string_view(valid).substr(0, 2)), c.error);
    EXPECT_EQ(FeedExpectingNoFrame(decoder, {}), c.error);
  }
}

TEST(FrameCodecErrorTest, ErrorInPendingPathIsSticky) {
  FrameDecoder decoder(100);
  const std::string header = Header(101);
  ASSERT_EQ(FeedExpectingNoFrame(decoder, header.substr(0, 2)), DecodeError::kNone);
  ASSERT_EQ(FeedExpectingNoFrame(decoder, header.substr(2)), DecodeError::kFrameTooLarge);
  EXPECT_EQ(FeedExpectingNoFrame(decoder, EncodeFrame(MakePing(1))), DecodeError::kFrameTooLarge);
}

TEST(FrameCodecErrorTest, DecodeErrorCodeMapsToWireCodes) {
  EXPECT_EQ(DecodeErrorCode(DecodeError::kNone), im::v1::OK);
  EXPECT_EQ(DecodeErrorCode(DecodeError::kFrameTooLarge), im::v1::FRAME_TOO_LARGE);
  EXPECT_EQ(DecodeErrorCode(DecodeError::kZeroLength), im::v1::MALFORMED_FRAME);
  EXPECT_EQ(DecodeErrorCode(DecodeError::kMalformed), im::v1::MALFORMED_FRAME);
}

TEST(FrameCodecErrorTest, DecodeErrorNamesAreDistinct) {
  const std::vector<DecodeError> errors = {DecodeError::kNone, DecodeError::kZeroLength,
                                           DecodeError::kFrameTooLarge, DecodeError::kMalformed};
  for (size_t i = 0; i < errors.size(); ++i) {
    EXPECT_FALSE(DecodeErrorName(errors[i]).empty());
    for (size_t j = i + 1; j < errors.size(); ++j) {
      EXPECT_NE(DecodeErrorName(errors[i]), DecodeErrorName(errors[j]));
    }
  }
}

// ---- a sink that stops ----

TEST(FrameCodecSinkTest, StopInWholeFramePathDeliversNothingMore) {
  const std::vector<Frame> frames = SampleFrames();
  const std::string stream = EncodeAll(frames);
  for (size_t stop_at = 0; stop_at < frames.size(); ++stop_at) {
    SCOPED_TRACE(::testing::Message() << "stop at frame " << stop_at);
    FrameDecoder decoder;
    std::vector<Frame> out;
    const DecodeError error = decoder.Feed(stream, [&](Frame&& frame) {
      out.push_back(std::move(frame));
      return out.size() <= stop_at;
    });
    EXPECT_EQ(error, DecodeError::kNone);
    ASSERT_EQ(out.size(), stop_at + 1);
    for (size_t i = 0; i < out.size(); ++i) EXPECT_TRUE(SameFrame(frames[i], out[i]));
  }
}

TEST(FrameCodecSinkTest, StopOnFrameCompletedFromPendingBytesDeliversNothingMore) {
  const std::vector<Frame> frames = SampleFrames();
  const std::string stream = EncodeAll(frames);
  const size_t first_end = FrameEnds(frames)[0];
  for (size_t split : {size_t{2}, first_end - 1}) {  // pending holds part of the header or body
    SCOPED_TRACE(::testing::Message() << "split at " << split);
    FrameDecoder decoder;
    ASSERT_EQ(FeedExpectingNoFrame(decoder, std::string_view(stream).substr(0, split)),
              DecodeError::kNone);
    std::vector<Frame> out;
    const DecodeError error =
        decoder.Feed(std::string_view(stream).substr(split), [&](Frame&& frame) {
          out.push_back(std::move(frame));
          return false;
        });
    EXPECT_EQ(error, DecodeError::kNone);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_TRUE(SameFrame(frames[0], out[0]));
  }
}

}  // namespace
}  // namespace im::common
