#include "common/tls/tls_channel.h"

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace im::tls {
namespace {

// Plaintext decrypted per SSL_read: one full TLS record.
constexpr int kPlaintextChunk = 16 * 1024;

int ChannelIndex() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

bool IsIpAddress(const std::string& host) {
  unsigned char address[sizeof(in6_addr)];
  return inet_pton(AF_INET, host.c_str(), address) == 1 ||
         inet_pton(AF_INET6, host.c_str(), address) == 1;
}

// Certificate name checks for a client that does not pin keys: a DNS name (also sent as SNI) or
// an IP address.
void CheckServerName(SSL* ssl, const std::string& name) {
  if (IsIpAddress(name)) {
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name.c_str());
    return;
  }
  SSL_set_tlsext_host_name(ssl, name.c_str());
  SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  SSL_set1_host(ssl, name.c_str());
}

}  // namespace

BIO_METHOD* TlsChannel::MemoryBioMethod() {
  static BIO_METHOD* const method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "im memory");
    BIO_meth_set_read(m, &TlsChannel::BioRead);
    BIO_meth_set_write(m, &TlsChannel::BioWrite);
    BIO_meth_set_ctrl(m, &TlsChannel::BioCtrl);
    BIO_meth_set_create(m, [](BIO* bio) {
      BIO_set_init(bio, 1);
      return 1;
    });
    return m;
  }();
  return method;
}

int TlsChannel::BioRead(BIO* bio, char* out, int length) {
  auto* channel = static_cast<TlsChannel*>(BIO_get_data(bio));
  BIO_clear_retry_flags(bio);
  if (channel->input_.empty()) {
    BIO_set_retry_read(bio);  // wait for the next Feed
    return -1;
  }
  const size_t n = std::min(channel->input_.size(), static_cast<size_t>(length));
  std::memcpy(out, channel->input_.data(), n);
  channel->input_.remove_prefix(n);
  return static_cast<int>(n);
}

int TlsChannel::BioWrite(BIO* bio, const char* data, int length) {
  auto* channel = static_cast<TlsChannel*>(BIO_get_data(bio));
  BIO_clear_retry_flags(bio);
  channel->output_.append(data, static_cast<size_t>(length));
  return length;
}

long TlsChannel::BioCtrl(BIO* bio, int command, long, void*) {
  auto* channel = static_cast<TlsChannel*>(BIO_get_data(bio));
  switch (command) {
    case BIO_CTRL_FLUSH:
      return 1;
    case BIO_CTRL_PENDING:
      return static_cast<long>(channel->input_.size());
    case BIO_CTRL_WPENDING:
      return 0;  // output is the owner's as soon as it is written
    default:
      return 0;
  }
}

TlsChannel::TlsChannel(SSL* ssl, std::string host) : ssl_(ssl), host_(std::move(host)) {
  BIO* bio = BIO_new(MemoryBioMethod());
  BIO_set_data(bio, this);
  SSL_set_bio(ssl_, bio, bio);  // one reference, owned by the SSL
  SSL_set_ex_data(ssl_, ChannelIndex(), this);
}

TlsChannel::~TlsChannel() {
  // Without this, OpenSSL takes a connection that ends without close_notify (a phone that lost
  // its network) as a reason to make its session unresumable, and the reconnect that follows
  // pays a full handshake. A ticket is a fresh key per session; the cut is no sign it leaked.
  if (handshake_done_ && error_.empty())
    SSL_set_shutdown(ssl_, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
  SSL_free(ssl_);
}

std::unique_ptr<TlsChannel> TlsChannel::ForServer(const ServerContext& context) {
  SSL* ssl = SSL_new(context.ssl_ctx());
  if (ssl == nullptr) return nullptr;
  SSL_set_accept_state(ssl);
  return std::unique_ptr<TlsChannel>(new TlsChannel(ssl, std::string()));
}

std::unique_ptr<TlsChannel> TlsChannel::ForClient(ClientContext& context, const std::string& host) {
  SSL* ssl = SSL_new(context.ssl_ctx());
  if (ssl == nullptr) return nullptr;
  const std::string& name =
      context.options().server_name.empty() ? host : context.options().server_name;
  if (!context.pinned()) CheckServerName(ssl, name);
  if (SSL_SESSION* session = context.TakeSession(name)) {
    SSL_set_session(ssl, session);
    SSL_SESSION_free(session);
  }
  SSL_set_connect_state(ssl);
  std::unique_ptr<TlsChannel> channel(new TlsChannel(ssl, name));
  ERR_clear_error();
  const int rc = SSL_do_handshake(ssl);
  if (rc != 1) channel->OnSslError(SSL_get_error(ssl, rc));  // wants the ServerHello
  return channel;
}

TlsChannel::Status TlsChannel::Feed(std::string_view received,
                                    absl::FunctionRef<bool(std::string_view)> on_plaintext) {
  if (!error_.empty()) return Status::kFailed;
  input_ = received;
  char plaintext[kPlaintextChunk];
  Status status = Status::kOpen;
  while (status == Status::kOpen) {
    ERR_clear_error();
    const int n = SSL_read(ssl_, plaintext, sizeof(plaintext));
    // Taken before anything else calls OpenSSL: SSL_get_error reads the last call's state.
    const int code = n > 0 ? SSL_ERROR_NONE : SSL_get_error(ssl_, n);
    if (!handshake_done_ && SSL_is_init_finished(ssl_)) status = OnHandshakeProgress();
    if (n <= 0) {
      if (code != SSL_ERROR_WANT_READ) status = OnSslError(code);
      break;
    }
    if (!on_plaintext(std::string_view(plaintext, static_cast<size_t>(n)))) break;
  }
  input_ = {};
  return status;
}

TlsChannel::Status TlsChannel::OnHandshakeProgress() {
  handshake_done_ = true;
  if (held_plaintext_.empty()) return Status::kOpen;
  const std::string held = std::move(held_plaintext_);
  held_plaintext_.clear();
  return Write(held);
}

TlsChannel::Status TlsChannel::Write(std::string_view plaintext) {
  if (!error_.empty()) return Status::kFailed;
  if (plaintext.empty() || shutdown_sent_) return Status::kOpen;
  if (!handshake_done_) {
    held_plaintext_.append(plaintext);
    return Status::kOpen;
  }
  ERR_clear_error();
  // The BIO takes every byte, so SSL_write encrypts all of it (in records of up to 16 KiB).
  const int n = SSL_write(ssl_, plaintext.data(), static_cast<int>(plaintext.size()));
  if (n <= 0) return OnSslError(SSL_get_error(ssl_, n));
  return Status::kOpen;
}

void TlsChannel::Shutdown() {
  if (!handshake_done_ || shutdown_sent_ || !error_.empty()) return;
  shutdown_sent_ = true;
  ERR_clear_error();
  SSL_shutdown(ssl_);  // writes close_notify; the peer's we do not wait for
}

TlsChannel::Status TlsChannel::OnSslError(int code) {
  switch (code) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
      return Status::kOpen;
    case SSL_ERROR_ZERO_RETURN:
      return Status::kClosedByPeer;
    default:
      break;
  }
  if (error_.empty()) {
    const long verify = SSL_get_verify_result(ssl_);
    error_ = verify != X509_V_OK ? absl::StrCat("certificate verify failed: ",
                                                X509_verify_cert_error_string(verify))
                                 : TakeOpenSslError();
  }
  ERR_clear_error();
  return Status::kFailed;
}

void TlsChannel::NoteVerifyFailure(SSL* ssl, std::string reason) {
  auto* channel = static_cast<TlsChannel*>(SSL_get_ex_data(ssl, ChannelIndex()));
  if (channel != nullptr && channel->error_.empty()) {
    channel->error_ = absl::StrCat("certificate verify failed: ", reason);
  }
}

std::string TlsChannel::HostOf(SSL* ssl) {
  auto* channel = static_cast<TlsChannel*>(SSL_get_ex_data(ssl, ChannelIndex()));
  return channel == nullptr ? std::string() : channel->host_;
}

bool TlsChannel::resumed() const { return SSL_session_reused(ssl_) == 1; }

std::string_view TlsChannel::version() const { return SSL_get_version(ssl_); }

std::string_view TlsChannel::cipher() const {
  const char* name = SSL_get_cipher_name(ssl_);
  return name == nullptr ? std::string_view() : std::string_view(name);
}

}  // namespace im::tls
