// im-chat-demo: two users on two gateways exchange a message, the way two phones would. alice logs
// in on one gateway and bob on another, with tokens signed by the cluster's secret; alice sends
// bob a message, bob receives it as a push and replies, alice receives the reply. Every step is
// printed with its latency.
//
// Exit status: 0 when both messages went through, 1 when a step failed or timed out (the message
// says which and why), 2 on bad options. Run it with `deploy/local/cluster demo`, which passes the
// ports and the secret of the running local cluster.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <utility>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/tls/tls_context.h"
#include "common/token.h"
#include "fmt/core.h"
#include "im/v1/client.pb.h"
#include "tests/support/wire_client.h"

namespace im::tools {
namespace {

using im::v1::Frame;
using Clock = std::chrono::steady_clock;
using Millis = std::chrono::milliseconds;

constexpr int64_t kTokenLifetimeSec = 3600;

struct Options {
  std::string host = "127.0.0.1";
  uint16_t alice_port = 7000;
  uint16_t bob_port = 7001;
  // alice connects over TLS, trusting this CA, when it is set (alice_port is then a TLS port).
  std::string alice_tls_ca;
  std::string alice = "alice";
  std::string bob = "bob";
  std::string secret = "dev-secret-change-me";  // deploy/local/logic.yaml
  std::string message = "hello bob";
  std::string reply = "hi alice, got your message";
  uint64_t timeout_ms = 5000;
};

std::string CodeName(im::v1::Code code) {
  std::string name(im::v1::Code_Name(code));
  return name.empty() ? std::to_string(static_cast<int>(code)) : name;
}

std::string BodyName(const Frame& frame) {
  const google::protobuf::FieldDescriptor* field =
      Frame::descriptor()->FindFieldByNumber(frame.body_case());
  return field != nullptr ? field->name() : "frame without body";
}

double MillisSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// A step that did not work; the message says what was being done and where to look.
template <typename... Args>
absl::Status Failed(fmt::format_string<Args...> format, Args&&... args) {
  return absl::UnknownError(fmt::format(format, std::forward<Args>(args)...));
}

// One user on one connection.
class User {
 public:
  // Over TLS, trusting the CA in `tls_ca`, when it is not empty.
  User(std::string uid, std::string host, uint16_t port, std::string tls_ca,
       Clock::time_point demo_start)
      : uid_(std::move(uid)),
        host_(std::move(host)),
        port_(port),
        tls_ca_(std::move(tls_ca)),
        demo_start_(demo_start) {}

  const std::string& uid() const { return uid_; }
  std::string address() const {
    return fmt::format("{}{}:{}", tls_ca_.empty() ? "" : "tls://", host_, port_);
  }

  // Prints one line prefixed with the time since the demo started.
  void Say(const std::string& text) const {
    std::printf("[%7.1f ms] %-5s %s\n", MillisSince(demo_start_), uid_.c_str(), text.c_str());
    std::fflush(stdout);
  }

  absl::Status Connect(Millis timeout) {
    absl::StatusOr<std::unique_ptr<testing::WireClient>> client = Open(timeout);
    if (!client.ok()) {
      return Failed(
          "{} cannot connect to the gateway at {}: {}. Is the cluster running? "
          "(deploy/local/cluster status)",
          uid_, address(), std::string(client.status().message()));
    }
    client_ = std::move(*client);
    if (client_->tls() != nullptr) {
      Say(fmt::format("connected over {} ({})", client_->tls()->version(),
                      client_->tls()->cipher()));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::unique_ptr<testing::WireClient>> Open(Millis timeout) {
    if (tls_ca_.empty()) return testing::WireClient::Connect(host_, port_);
    tls::ClientTlsOptions trust;
    trust.ca_file = tls_ca_;
    absl::StatusOr<std::shared_ptr<tls::ClientContext>> context = tls::ClientContext::Create(trust);
    if (!context.ok()) return context.status();
    tls_context_ = std::move(*context);
    return testing::WireClient::ConnectTls(host_, port_, *tls_context_, host_, timeout);
  }

  absl::Status Login(const std::string& secret, Millis timeout) {
    common::TokenClaims claims;
    claims.uid = uid_;
    claims.exp_unix_sec = static_cast<int64_t>(std::time(nullptr)) + kTokenLifetimeSec;
    claims.device = device_;
    Frame request;
    im::v1::LoginReq* login = request.mutable_login_req();
    login->set_token(common::SignToken(claims, secret));
    login->set_device(device_);
    login->set_platform("demo");
    const Clock::time_point sent = Clock::now();
    absl::StatusOr<Frame> response =
        Call(std::move(request), Frame::kLoginResp, "LoginResp", timeout);
    if (!response.ok()) return response.status();
    const im::v1::LoginResp& resp = response->login_resp();
    if (resp.status().code() != im::v1::OK) {
      std::string hint;
      switch (resp.status().code()) {
        case im::v1::UNAVAILABLE:
          hint =
              " The gateway could not reach logic: is im-logic running, and is the gateway's "
              "logic_target its address? (deploy/local/cluster status, deploy/local/cluster logs)";
          break;
        case im::v1::TOKEN_INVALID:
          hint = " --secret must equal logic.token_secret (deploy/local/logic.yaml).";
          break;
        default:
          break;
      }
      return Failed("{}'s login on {} was refused: {} ({}).{}", uid_, address(),
                    CodeName(resp.status().code()), resp.status().message(), hint);
    }
    Say(fmt::format("logged in on {} as {} (device {}, session {}) in {:.1f} ms", address(),
                    resp.uid(), device_, resp.session_id(), MillisSince(sent)));
    return absl::OkStatus();
  }

  // Sends a text message to `to`; returns the accepted SendResp.
  absl::StatusOr<im::v1::SendResp> Send(const std::string& to, const std::string& text,
                                        const std::string& client_msg_id, Millis timeout) {
    Frame request;
    im::v1::SendReq* send = request.mutable_send_req();
    send->set_to_uid(to);
    send->set_client_msg_id(client_msg_id);
    send->set_type(im::v1::TEXT);
    send->set_body(text);
    const Clock::time_point sent = Clock::now();
    absl::StatusOr<Frame> response =
        Call(std::move(request), Frame::kSendResp, "SendResp", timeout);
    if (!response.ok()) return response.status();
    const im::v1::SendResp& resp = response->send_resp();
    if (resp.status().code() != im::v1::OK) {
      return Failed("{}'s message to {} was refused: {} ({})", uid_, to,
                    CodeName(resp.status().code()), resp.status().message());
    }
    Say(fmt::format("-> {}: \"{}\"  accepted in {:.1f} ms: conversation {}, seq {}, msg_id {}", to,
                    text, MillisSince(sent), resp.conv_id(), resp.seq(), resp.msg_id()));
    return resp;
  }

  // Waits for the pushed message with `client_msg_id`; frames about anything else are skipped.
  absl::StatusOr<im::v1::Message> ReceiveMessage(const std::string& client_msg_id, Millis timeout) {
    std::optional<im::v1::Message> found;
    absl::StatusOr<Frame> push = Expect(
        [&](const Frame& frame) {
          if (frame.body_case() != Frame::kMessagePush) return false;
          for (const im::v1::Message& message : frame.message_push().messages()) {
            if (message.client_msg_id() == client_msg_id) {
              found = message;
              return true;
            }
          }
          return false;
        },
        fmt::format("the MessagePush with client_msg_id {}", client_msg_id), timeout);
    if (!push.ok()) return push.status();
    return *std::move(found);
  }

 private:
  // Sends `request` with a fresh id and waits for the response with that id.
  absl::StatusOr<Frame> Call(Frame request, Frame::BodyCase expected, const char* expected_name,
                             Millis timeout) {
    const uint64_t id = next_id_++;
    request.set_id(id);
    if (!client_->SendFrame(request)) {
      return Failed("{}: cannot send {} to {}: the connection is broken", uid_, BodyName(request),
                    address());
    }
    absl::StatusOr<Frame> response =
        Expect([id](const Frame& frame) { return frame.id() == id; },
               fmt::format("{} (frame id {})", expected_name, id), timeout);
    if (response.ok() && response->body_case() != expected) {
      return Failed("{}: expected {} for frame id {}, got {}", uid_, expected_name, id,
                    BodyName(*response));
    }
    return response;
  }

  // The first frame `match` accepts. A frame that ends the connection (Error, Kick, GoAway), the
  // connection closing, or the timeout is a failure; any other frame is skipped.
  absl::StatusOr<Frame> Expect(const std::function<bool(const Frame&)>& match,
                               const std::string& what, Millis timeout) {
    const Clock::time_point deadline = Clock::now() + timeout;
    while (true) {
      const auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now());
      std::optional<Frame> frame;
      if (left.count() > 0) frame = client_->Receive(left);
      if (!frame.has_value()) {
        if (client_->closed()) {
          return Failed("{}: the gateway at {} closed the connection while {} waited for {}", uid_,
                        address(), uid_, what);
        }
        return Failed("{}: no {} within {} ms from the gateway at {}", uid_, what, timeout.count(),
                      address());
      }
      if (match(*frame)) return std::move(*frame);
      switch (frame->body_case()) {
        case Frame::kError:
          return Failed("{}: the gateway at {} sent Error {} ({}) while {} waited for {}", uid_,
                        address(), CodeName(frame->error().code()), frame->error().message(), uid_,
                        what);
        case Frame::kKick:
          return Failed("{} was kicked ({}: {}) while waiting for {}; is another demo running?",
                        uid_, im::v1::Kick::Reason_Name(frame->kick().reason()),
                        frame->kick().message(), what);
        case Frame::kGoAway:
          return Failed("{}: the gateway at {} is shutting down (GoAway) while {} waited for {}",
                        uid_, address(), uid_, what);
        default:
          break;  // e.g. a push about an earlier message: not what this step waits for
      }
    }
  }

  std::string uid_;
  std::string host_;
  uint16_t port_;
  std::string tls_ca_;
  std::shared_ptr<tls::ClientContext> tls_context_;
  Clock::time_point demo_start_;
  std::string device_ = "demo";
  uint64_t next_id_ = 1;
  std::unique_ptr<testing::WireClient> client_;
};

// Checks that a pushed message is the one that was sent.
absl::Status CheckDelivered(const im::v1::Message& got, const im::v1::SendResp& sent,
                            const std::string& sender, const std::string& text) {
  std::string problem;
  if (got.sender() != sender) {
    problem = fmt::format("sender {} instead of {}", got.sender(), sender);
  } else if (got.body() != text) {
    problem = fmt::format("body \"{}\" instead of \"{}\"", got.body(), text);
  } else if (got.conv_id() != sent.conv_id() || got.seq() != sent.seq()) {
    problem = fmt::format("conversation {} seq {} while the sender was told {} seq {}",
                          got.conv_id(), got.seq(), sent.conv_id(), sent.seq());
  }
  if (!problem.empty()) return Failed("the pushed message differs from the sent one: {}", problem);
  return absl::OkStatus();
}

std::string NewClientMsgId(const std::string& uid) {
  std::random_device random;
  return fmt::format("demo-{}-{}-{:08x}", uid, std::time(nullptr), random());
}

absl::Status Exchange(User& alice, User& bob, const Options& options) {
  const Millis timeout(options.timeout_ms);
  for (User* user : {&alice, &bob}) {
    if (absl::Status status = user->Connect(timeout); !status.ok()) return status;
    if (absl::Status status = user->Login(options.secret, timeout); !status.ok()) return status;
  }
  absl::StatusOr<im::v1::SendResp> sent[2];
  User* senders[2] = {&alice, &bob};
  User* receivers[2] = {&bob, &alice};
  const std::string* texts[2] = {&options.message, &options.reply};
  for (int i = 0; i < 2; ++i) {
    User& from = *senders[i];
    User& to = *receivers[i];
    const std::string& text = *texts[i];
    const std::string client_msg_id = NewClientMsgId(from.uid());
    const Clock::time_point send_start = Clock::now();
    sent[i] = from.Send(to.uid(), text, client_msg_id, timeout);
    if (!sent[i].ok()) return sent[i].status();
    absl::StatusOr<im::v1::Message> got = to.ReceiveMessage(client_msg_id, timeout);
    if (!got.ok()) return got.status();
    const double delivery_ms = MillisSince(send_start);
    if (absl::Status status = CheckDelivered(*got, *sent[i], from.uid(), text); !status.ok()) {
      return status;
    }
    to.Say(fmt::format("<- {}: \"{}\"  conversation {}, seq {}; {:.1f} ms after {} sent it",
                       got->sender(), got->body(), got->conv_id(), got->seq(), delivery_ms,
                       from.uid()));
  }
  if (sent[1]->conv_id() != sent[0]->conv_id() || sent[1]->seq() <= sent[0]->seq()) {
    return Failed("out of order: the reply is {} seq {}, after {} seq {}", sent[1]->conv_id(),
                  sent[1]->seq(), sent[0]->conv_id(), sent[0]->seq());
  }
  return absl::OkStatus();
}

int Run(const Options& options) {
  const Clock::time_point start = Clock::now();
  User alice(options.alice, options.host, options.alice_port, options.alice_tls_ca, start);
  User bob(options.bob, options.host, options.bob_port, "", start);
  std::printf("im-chat-demo: %s on the gateway at %s, %s on the gateway at %s\n",
              alice.uid().c_str(), alice.address().c_str(), bob.uid().c_str(),
              bob.address().c_str());
  if (absl::Status status = Exchange(alice, bob, options); !status.ok()) {
    std::fprintf(stderr, "im-chat-demo: FAILED: %s\n", std::string(status.message()).c_str());
    return 1;
  }
  std::printf("ok: %s and %s exchanged a message each way in %.1f ms\n", alice.uid().c_str(),
              bob.uid().c_str(), MillisSince(start));
  return 0;
}

}  // namespace
}  // namespace im::tools

int main(int argc, char** argv) {
  im::tools::Options options;
  CLI::App app{
      "im-chat-demo: alice (on one gateway) and bob (on another) exchange a message; defaults "
      "fit the local cluster (deploy/local/cluster demo)"};
  // The last of a repeated option wins: `deploy/local/cluster demo --secret S` overrides the
  // secret the script passes.
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.add_option("--host", options.host, "Gateways' IPv4 address")->capture_default_str();
  app.add_option("--alice-port", options.alice_port, "Client port of alice's gateway")
      ->capture_default_str()
      ->check(CLI::Range(1, 65535));
  app.add_option("--bob-port", options.bob_port, "Client port of bob's gateway")
      ->capture_default_str()
      ->check(CLI::Range(1, 65535));
  app.add_option("--alice-tls-ca", options.alice_tls_ca,
                 "alice connects over TLS (--alice-port is a TLS port), trusting this CA file");
  app.add_option("--alice", options.alice, "First user's uid")->capture_default_str();
  app.add_option("--bob", options.bob, "Second user's uid")->capture_default_str();
  app.add_option("--secret", options.secret, "Token signing secret (logic.token_secret)")
      ->capture_default_str();
  app.add_option("--message", options.message, "What alice sends")->capture_default_str();
  app.add_option("--reply", options.reply, "What bob answers")->capture_default_str();
  app.add_option("--timeout-ms", options.timeout_ms, "Longest wait for each step")
      ->capture_default_str()
      ->check(CLI::Range(uint64_t{1}, uint64_t{600'000}));
  CLI11_PARSE(app, argc, argv);
  if (options.alice == options.bob) {
    std::fprintf(stderr, "im-chat-demo: --alice and --bob must be different users\n");
    return 2;
  }
  return im::tools::Run(options);
}
