#include "common/tls/tls_context.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <ctime>
#include <optional>

#include "absl/strings/str_cat.h"
#include "common/file_contents.h"
#include "common/tls/tls_channel.h"

namespace im::tls {
namespace {

// TLS 1.2 suites: ephemeral ECDH key exchange (forward secrecy) with an AEAD cipher only. TLS 1.3
// suites are all AEAD and forward secret; OpenSSL's default list of them is kept.
constexpr char kTls12Ciphers[] = "ECDHE+AESGCM:ECDHE+CHACHA20";
// What SSL_CTX_get/set_tlsext_ticket_keys move: name, HMAC key and AES key.
constexpr size_t kTicketKeysBytes = 80;

struct X509Deleter {
  void operator()(X509* certificate) const { X509_free(certificate); }
};

absl::Status OpenSslFailure(const std::string& what) {
  return absl::InvalidArgumentError(what + ": " + TakeOpenSslError());
}

// The policy both sides share: versions, TLS 1.2 suites, no renegotiation, small idle buffers.
absl::Status ApplyProtocolPolicy(SSL_CTX* ctx) {
  if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
    return OpenSslFailure("minimum TLS version");
  }
  if (SSL_CTX_set_cipher_list(ctx, kTls12Ciphers) != 1) return OpenSslFailure("TLS 1.2 ciphers");
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  // An idle connection keeps no read or write buffer (about 34 KiB each otherwise).
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  return absl::OkStatus();
}

absl::Status UseTicketKeyFile(SSL_CTX* ctx, const std::string& path) {
  std::optional<std::string> read = common::ReadFileContents(path);
  if (!read) {
    return absl::InvalidArgumentError(absl::StrCat("ticket key file ", path, ": cannot open"));
  }
  std::string keys = *std::move(read);
  if (keys.size() != kTicketKeysBytes) {
    return absl::InvalidArgumentError(absl::StrCat("ticket key file ", path, ": has ", keys.size(),
                                                   " bytes, must have exactly ", kTicketKeysBytes,
                                                   " (openssl rand 80)"));
  }
  if (SSL_CTX_set_tlsext_ticket_keys(ctx, keys.data(), static_cast<long>(keys.size())) != 1) {
    return OpenSslFailure("ticket key file " + path);
  }
  OPENSSL_cleanse(keys.data(), keys.size());
  return absl::OkStatus();
}

int64_t NotAfterUnix(X509* certificate) {
  std::tm when{};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(certificate), &when) != 1) return 0;
  return static_cast<int64_t>(timegm(&when));
}

std::string SubjectOf(X509* certificate) {
  char line[512] = {};
  X509_NAME_oneline(X509_get_subject_name(certificate), line, sizeof(line));
  return line;
}

int ClientContextIndex() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

ClientContext* ClientContextOf(SSL* ssl) {
  return static_cast<ClientContext*>(
      SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ClientContextIndex()));
}

// With pins, the leaf's key decides alone: chain errors above it are let through, and the leaf is
// accepted exactly when its key is pinned. Without pins, OpenSSL's verdict stands.
int VerifyServer(int preverified, X509_STORE_CTX* store) {
  SSL* ssl =
      static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
  ClientContext* context = ClientContextOf(ssl);
  if (context == nullptr || !context->pinned()) return preverified;
  if (X509_STORE_CTX_get_error_depth(store) != 0) return 1;
  absl::StatusOr<std::array<uint8_t, 32>> digest =
      PublicKeyDigest(X509_STORE_CTX_get_current_cert(store));
  if (digest.ok() && context->MatchesPin(*digest)) {
    X509_STORE_CTX_set_error(store, X509_V_OK);
    return 1;
  }
  TlsChannel::NoteVerifyFailure(ssl, "the server's key matches none of the pinned keys");
  X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION);
  return 0;
}

// A ticket the server sent (TLS 1.3 sends it after the handshake): kept for the next connection.
int KeepNewSession(SSL* ssl, SSL_SESSION* session) {
  ClientContext* context = ClientContextOf(ssl);
  const std::string host = TlsChannel::HostOf(ssl);
  if (context == nullptr || host.empty()) return 0;
  context->RememberSession(host, session);
  return 1;  // we own the reference now
}

}  // namespace

void SslCtxDeleter::operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }

std::string TakeOpenSslError() {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "unknown error";
  char text[256] = {};
  ERR_error_string_n(code, text, sizeof(text));
  return text;
}

absl::StatusOr<std::shared_ptr<const ServerContext>> ServerContext::Load(
    const ServerTlsFiles& files, const ServerContext* previous) {
  ERR_clear_error();
  SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
  if (!ctx) return OpenSslFailure("creating the TLS context");
  if (absl::Status policy = ApplyProtocolPolicy(ctx.get()); !policy.ok()) return policy;
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), files.cert_file.c_str()) != 1) {
    return OpenSslFailure(absl::StrCat("certificate file ", files.cert_file));
  }
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), files.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    return OpenSslFailure(absl::StrCat("key file ", files.key_file));
  }
  if (SSL_CTX_check_private_key(ctx.get()) != 1) {
    return OpenSslFailure(
        absl::StrCat("key file ", files.key_file, " does not match ", files.cert_file));
  }
  // Stateless tickets need no server-side cache; without one, memory does not grow with
  // handshakes.
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
  SSL_CTX_set_num_tickets(ctx.get(), 1);
  if (!files.ticket_key_file.empty()) {
    if (absl::Status keys = UseTicketKeyFile(ctx.get(), files.ticket_key_file); !keys.ok()) {
      return keys;
    }
  } else if (previous != nullptr) {
    unsigned char keys[kTicketKeysBytes];
    if (SSL_CTX_get_tlsext_ticket_keys(previous->ssl_ctx(), keys, sizeof(keys)) != 1 ||
        SSL_CTX_set_tlsext_ticket_keys(ctx.get(), keys, sizeof(keys)) != 1) {
      return OpenSslFailure("handing over the session ticket keys");
    }
  }
  X509* certificate = SSL_CTX_get0_certificate(ctx.get());
  const int64_t not_after = NotAfterUnix(certificate);
  std::string subject = SubjectOf(certificate);
  return std::shared_ptr<const ServerContext>(
      new ServerContext(std::move(ctx), not_after, std::move(subject)));
}

absl::StatusOr<std::shared_ptr<ClientContext>> ClientContext::Create(
    const ClientTlsOptions& options) {
  std::vector<std::array<uint8_t, 32>> pins;
  for (const std::string& pin : options.pinned_keys) {
    absl::StatusOr<std::array<uint8_t, 32>> digest = ParsePin(pin);
    if (!digest.ok()) return digest.status();
    pins.push_back(*digest);
  }
  ERR_clear_error();
  SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx) return OpenSslFailure("creating the TLS context");
  if (absl::Status policy = ApplyProtocolPolicy(ctx.get()); !policy.ok()) return policy;
  if (!options.ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(ctx.get(), options.ca_file.c_str(), nullptr) != 1) {
      return OpenSslFailure(absl::StrCat("CA file ", options.ca_file));
    }
  } else if (SSL_CTX_set_default_verify_paths(ctx.get()) != 1) {
    return OpenSslFailure("the system's CA roots");
  }
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, &VerifyServer);
  if (options.resume_sessions) {
    SSL_CTX_set_session_cache_mode(ctx.get(),
                                   SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx.get(), &KeepNewSession);
  } else {
    SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
  }
  std::shared_ptr<ClientContext> context(
      new ClientContext(std::move(ctx), options, std::move(pins)));
  SSL_CTX_set_ex_data(context->ssl_ctx(), ClientContextIndex(), context.get());
  return context;
}

ClientContext::~ClientContext() {
  for (auto& [host, session] : sessions_) SSL_SESSION_free(session);
}

bool ClientContext::MatchesPin(const std::array<uint8_t, 32>& key_digest) const {
  for (const std::array<uint8_t, 32>& pin : pins_) {
    if (CRYPTO_memcmp(pin.data(), key_digest.data(), pin.size()) == 0) return true;
  }
  return false;
}

SSL_SESSION* ClientContext::TakeSession(const std::string& host) {
  std::lock_guard<std::mutex> lock(sessions_mutex_);
  auto it = sessions_.find(host);
  if (it == sessions_.end()) return nullptr;
  SSL_SESSION* session = it->second;
  sessions_.erase(it);
  return session;
}

void ClientContext::RememberSession(const std::string& host, SSL_SESSION* session) {
  std::lock_guard<std::mutex> lock(sessions_mutex_);
  SSL_SESSION*& slot = sessions_[host];
  if (slot != nullptr) SSL_SESSION_free(slot);
  slot = session;
}

absl::StatusOr<std::array<uint8_t, 32>> PublicKeyDigest(X509* certificate) {
  unsigned char* der = nullptr;
  const int length = i2d_PUBKEY(X509_get0_pubkey(certificate), &der);
  if (length <= 0) return OpenSslFailure("encoding the public key");
  std::array<uint8_t, 32> digest{};
  unsigned int digest_length = 0;
  const bool ok = EVP_Digest(der, static_cast<size_t>(length), digest.data(), &digest_length,
                             EVP_sha256(), nullptr) == 1;
  OPENSSL_free(der);
  if (!ok || digest_length != digest.size()) return OpenSslFailure("hashing the public key");
  return digest;
}

absl::StatusOr<std::array<uint8_t, 32>> ParsePin(const std::string& pin) {
  constexpr std::string_view kPrefix = "sha256/";
  // Base64 of 32 bytes: 44 characters, the last one padding.
  constexpr size_t kEncodedLength = 44;
  if (pin.rfind(kPrefix, 0) != 0 || pin.size() != kPrefix.size() + kEncodedLength) {
    return absl::InvalidArgumentError(
        absl::StrCat("pinned key \"", pin, "\" is not sha256/<base64 of 32 bytes>"));
  }
  const std::string_view encoded = std::string_view(pin).substr(kPrefix.size());
  unsigned char decoded[kEncodedLength] = {};
  const int length =
      EVP_DecodeBlock(decoded, reinterpret_cast<const unsigned char*>(encoded.data()),
                      static_cast<int>(encoded.size()));
  // EVP_DecodeBlock counts the padding: 33 bytes, the last one zero.
  if (length != 33 || encoded.back() != '=') {
    return absl::InvalidArgumentError(absl::StrCat("pinned key \"", pin, "\" is not valid base64"));
  }
  std::array<uint8_t, 32> digest{};
  std::copy(decoded, decoded + digest.size(), digest.begin());
  return digest;
}

absl::StatusOr<std::string> PinOfCertificateFile(const std::string& cert_file) {
  FILE* file = std::fopen(cert_file.c_str(), "r");
  if (file == nullptr) return absl::NotFoundError(absl::StrCat("cannot open ", cert_file));
  std::unique_ptr<X509, X509Deleter> certificate(PEM_read_X509(file, nullptr, nullptr, nullptr));
  std::fclose(file);
  if (!certificate) return OpenSslFailure(absl::StrCat("certificate file ", cert_file));
  absl::StatusOr<std::array<uint8_t, 32>> digest = PublicKeyDigest(certificate.get());
  if (!digest.ok()) return digest.status();
  unsigned char encoded[64] = {};
  const int length = EVP_EncodeBlock(encoded, digest->data(), static_cast<int>(digest->size()));
  return "sha256/" + std::string(reinterpret_cast<char*>(encoded), static_cast<size_t>(length));
}

}  // namespace im::tls
