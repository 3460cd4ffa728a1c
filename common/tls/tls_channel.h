#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <string>
#include <string_view>

#include "absl/functional/function_ref.h"
#include "common/tls/tls_context.h"

namespace im::tls {

// One TLS connection driven through memory, so that TLS runs on the owner's event loop: the owner
// feeds what its socket read, gets the plaintext back, and writes what the channel has to send.
// Used by one thread at a time (a connection's loop).
//
// The channel's BIO is a memory BIO of its own rather than BIO_s_mem: reads come straight from the
// buffer the owner passes to Feed (no copy), writes append to an output string the owner takes
// whole, and an idle channel holds no buffer at all.
class TlsChannel {
 public:
  enum class Status {
    kOpen,
    kClosedByPeer,  // close_notify received
    kFailed,        // handshake refused, bad record, verification failed: error() says which
  };

  static std::unique_ptr<TlsChannel> ForServer(const ServerContext& context);
  // Starts the handshake at once: the ClientHello is in the output when this returns. `host` is
  // what the certificate is checked against and sent as SNI (ClientTlsOptions::server_name wins).
  static std::unique_ptr<TlsChannel> ForClient(ClientContext& context, const std::string& host);
  ~TlsChannel();
  TlsChannel(const TlsChannel&) = delete;
  TlsChannel& operator=(const TlsChannel&) = delete;

  // Bytes read from the socket. Application data goes to `on_plaintext`, which returns false when
  // its owner stops reading (the rest is discarded). Whatever TLS has to send in return
  // (handshake, tickets, alerts) collects in the output.
  Status Feed(std::string_view received, absl::FunctionRef<bool(std::string_view)> on_plaintext);
  // Encrypts application data into the output. Before the handshake is done it is held, and
  // encrypted once it is.
  Status Write(std::string_view plaintext);
  // Sends close_notify after what was written (once the handshake is done; before, nothing).
  void Shutdown();

  bool has_output() const { return !output_.empty(); }
  // What the socket must send, in order; the channel keeps nothing.
  std::string TakeOutput() { return std::move(output_); }

  bool handshake_done() const { return handshake_done_; }
  // Whether the handshake resumed an earlier session (a ticket) instead of a full one.
  bool resumed() const;
  // The negotiated protocol ("TLSv1.3") and cipher, once the handshake is done.
  std::string_view version() const;
  std::string_view cipher() const;
  // Why the channel failed.
  const std::string& error() const { return error_; }

  // For the verification callback: a reason clearer than OpenSSL's code for the failure.
  static void NoteVerifyFailure(SSL* ssl, std::string reason);
  // The host a client channel connects to (its session tickets are kept under it).
  static std::string HostOf(SSL* ssl);

 private:
  TlsChannel(SSL* ssl, std::string host);
  static BIO_METHOD* MemoryBioMethod();
  static int BioRead(BIO* bio, char* out, int length);
  static int BioWrite(BIO* bio, const char* data, int length);
  static long BioCtrl(BIO* bio, int command, long number, void* pointer);

  // The error of a failed SSL call (SSL_get_error `code`): kOpen when it only waits for input.
  Status OnSslError(int code);
  // Encrypts what waited for the handshake, once it is done.
  Status OnHandshakeProgress();

  SSL* ssl_;
  std::string host_;
  std::string_view input_;  // what Feed was given and OpenSSL has not read yet
  std::string output_;
  std::string held_plaintext_;  // written before the handshake completed
  std::string error_;
  bool handshake_done_ = false;
  bool shutdown_sent_ = false;
};

}  // namespace im::tls
