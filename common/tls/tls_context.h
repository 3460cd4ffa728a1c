#pragma once

#include <openssl/ssl.h>

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace im::tls {

struct SslCtxDeleter {
  void operator()(SSL_CTX* ctx) const;
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxDeleter>;

// The first entry of OpenSSL's error queue (and clears the queue), for messages.
std::string TakeOpenSslError();

// What a server presents: its certificate chain and private key, PEM files.
struct ServerTlsFiles {
  std::string cert_file;
  std::string key_file;
  // 80 random bytes (`openssl rand 80 > ticket.key`) that encrypt session tickets. Servers that
  // share it resume each other's sessions: a client moved to another gateway still resumes.
  // Empty: keys of the process's own (kept across reloads), so a ticket resumes only where it
  // was issued. Rotating it makes outstanding tickets fall back to a full handshake.
  std::string ticket_key_file;
};

// A server's TLS settings, loaded from files and immutable once built: a reload builds a new one,
// and connections keep the one they started with (each SSL holds a reference to its SSL_CTX).
// Any thread.
//
// Policy: TLS 1.3, or 1.2 with forward-secret AEAD suites only (ECDHE with AES-GCM or
// ChaCha20-Poly1305); 1.0 and 1.1 refused; no renegotiation. Resumption by stateless session
// tickets (one per handshake): the server keeps no session cache, so resumption costs no memory.
class ServerContext {
 public:
  // `previous`, when given and no ticket key file is set, hands over its ticket keys: tickets
  // issued before a reload still resume after it.
  static absl::StatusOr<std::shared_ptr<const ServerContext>> Load(
      const ServerTlsFiles& files, const ServerContext* previous = nullptr);

  SSL_CTX* ssl_ctx() const { return ctx_.get(); }
  // When the certificate stops being valid (Unix seconds), and whose it is, for metrics and logs.
  int64_t not_after_unix() const { return not_after_unix_; }
  const std::string& subject() const { return subject_; }

 private:
  ServerContext(SslCtxPtr ctx, int64_t not_after_unix, std::string subject)
      : ctx_(std::move(ctx)), not_after_unix_(not_after_unix), subject_(std::move(subject)) {}

  SslCtxPtr ctx_;
  int64_t not_after_unix_;
  std::string subject_;
};

// How a client decides to trust a server.
struct ClientTlsOptions {
  // PEM file of the CAs to trust; empty: the system's roots (/etc/ssl/certs).
  std::string ca_file;
  // Public keys to pin, each "sha256/<base64 of the SHA-256 of the DER SubjectPublicKeyInfo>" (as
  // `openssl x509 -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256
  // -binary | base64` prints it). When set, a server is trusted if and only if its certificate's
  // key is one of them: the pin replaces the CA chain and the name check (a self-signed
  // certificate is fine).
  std::vector<std::string> pinned_keys;
  // Name the certificate must carry, and sent as SNI; empty: the host of the address connected to
  // (an IP address is checked against the certificate's IP entries).
  std::string server_name;
  // Resume with the ticket of the last connection to the same host (a cheaper handshake).
  bool resume_sessions = true;
};

// A client's TLS settings and its session tickets, one per host. Thread-safe: one context may
// serve many connections on several threads.
class ClientContext {
 public:
  static absl::StatusOr<std::shared_ptr<ClientContext>> Create(const ClientTlsOptions& options);
  ~ClientContext();

  SSL_CTX* ssl_ctx() const { return ctx_.get(); }
  const ClientTlsOptions& options() const { return options_; }
  bool pinned() const { return !pins_.empty(); }
  bool MatchesPin(const std::array<uint8_t, 32>& key_digest) const;

  // The ticket to resume with for `host` (the caller owns it), or null. A ticket is used once.
  SSL_SESSION* TakeSession(const std::string& host);
  // Keeps `session` (owned from now on) as the one to resume `host` with.
  void RememberSession(const std::string& host, SSL_SESSION* session);

 private:
  ClientContext(SslCtxPtr ctx, ClientTlsOptions options, std::vector<std::array<uint8_t, 32>> pins)
      : ctx_(std::move(ctx)), options_(std::move(options)), pins_(std::move(pins)) {}

  SslCtxPtr ctx_;
  const ClientTlsOptions options_;
  const std::vector<std::array<uint8_t, 32>> pins_;
  std::mutex sessions_mutex_;
  std::map<std::string, SSL_SESSION*> sessions_;  // guarded by sessions_mutex_
};

// SHA-256 of a certificate's DER SubjectPublicKeyInfo: what a pin names.
absl::StatusOr<std::array<uint8_t, 32>> PublicKeyDigest(X509* certificate);
// Parses "sha256/<base64>".
absl::StatusOr<std::array<uint8_t, 32>> ParsePin(const std::string& pin);
// The pin of the first certificate in a PEM file (for tools and tests).
absl::StatusOr<std::string> PinOfCertificateFile(const std::string& cert_file);

}  // namespace im::tls
