#include "common/tls/tls_channel.h"

#include <gtest/gtest.h>
#include <openssl/ssl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "common/tls/testing/test_certificates.h"

namespace im::tls {
namespace {

using testing::TestCertificates;

// A client and a server channel wired back to back through memory.
struct Wire {
  Wire(std::unique_ptr<TlsChannel> client_channel, std::unique_ptr<TlsChannel> server_channel)
      : client(std::move(client_channel)), server(std::move(server_channel)) {}

  std::unique_ptr<TlsChannel> client;
  std::unique_ptr<TlsChannel> server;
  std::string at_client;
  std::string at_server;
  TlsChannel::Status client_status = TlsChannel::Status::kOpen;
  TlsChannel::Status server_status = TlsChannel::Status::kOpen;

  // Moves bytes both ways until neither side has anything to send.
  void Pump() {
    for (int round = 0; round < 100; ++round) {
      bool moved = false;
      if (client->has_output()) {
        moved = true;
        server_status = server->Feed(client->TakeOutput(), [this](std::string_view bytes) {
          at_server.append(bytes);
          return true;
        });
      }
      if (server->has_output()) {
        moved = true;
        client_status = client->Feed(server->TakeOutput(), [this](std::string_view bytes) {
          at_client.append(bytes);
          return true;
        });
      }
      if (!moved) return;
    }
    FAIL() << "the channels kept talking";
  }
};

class TlsChannelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    directory_ = std::filesystem::temp_directory_path() /
                 ("im-tls-channel-" + std::to_string(::getpid()) + "-" +
                  ::testing::UnitTest::GetInstance()->current_test_info()->name());
    absl::StatusOr<TestCertificates> certificates = TestCertificates::Create(directory_ / "a");
    ASSERT_TRUE(certificates.ok()) << certificates.status();
    certificates_ = *certificates;
    absl::StatusOr<std::shared_ptr<const ServerContext>> server =
        ServerContext::Load({certificates_.cert_file, certificates_.key_file, ""});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *server;
  }
  void TearDown() override { std::filesystem::remove_all(directory_); }

  std::shared_ptr<ClientContext> Client(ClientTlsOptions options) {
    absl::StatusOr<std::shared_ptr<ClientContext>> client = ClientContext::Create(options);
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? *client : nullptr;
  }
  ClientTlsOptions TrustingTheTestCa() {
    ClientTlsOptions options;
    options.ca_file = certificates_.ca_file;
    return options;
  }
  Wire Connect(ClientContext& client, const std::string& host = "localhost",
               const ServerContext* server = nullptr) {
    Wire wire(TlsChannel::ForClient(client, host),
              TlsChannel::ForServer(server != nullptr ? *server : *server_));
    wire.Pump();
    return wire;
  }

  std::filesystem::path directory_;
  TestCertificates certificates_;
  std::shared_ptr<const ServerContext> server_;
};

TEST_F(TlsChannelTest, HandshakesTls13AndCarriesDataBothWays) {
  std::shared_ptr<ClientContext> client = Client(TrustingTheTestCa());
  Wire wire = Connect(*client);
  ASSERT_TRUE(wire.client->handshake_done()) << wire.client->error();
  ASSERT_TRUE(wire.server->handshake_done()) << wire.server->error();
  EXPECT_EQ(wire.client->version(), "TLSv1.3");
  EXPECT_FALSE(wire.client->resumed());

  const std::string large(1 << 20, 'x');  // many records
  ASSERT_EQ(wire.client->Write("hello from the client"), TlsChannel::Status::kOpen);
  ASSERT_EQ(wire.server->Write(large), TlsChannel::Status::kOpen);
  wire.Pump();
  EXPECT_EQ(wire.at_server, "hello from the client");
  EXPECT_EQ(wire.at_client, large);
}

TEST_F(TlsChannelTest, DataWrittenBeforeTheHandshakeLeavesAfterIt) {
  std::shared_ptr<ClientContext> client = Client(TrustingTheTestCa());
  Wire wire(TlsChannel::ForClient(*client, "127.0.0.1"), TlsChannel::ForServer(*server_));
  wire.client->Write("early ");
  wire.server->Write("welcome");
  wire.client->Write("request");
  wire.Pump();
  EXPECT_EQ(wire.at_server, "early request");
  EXPECT_EQ(wire.at_client, "welcome");
}

TEST_F(TlsChannelTest, ClientRefusesAServerItsCaDidNotSign) {
  absl::StatusOr<TestCertificates> other = TestCertificates::Create(directory_ / "b", "other");
  ASSERT_TRUE(other.ok());
  ClientTlsOptions options;
  options.ca_file = other->ca_file;
  std::shared_ptr<ClientContext> client = Client(options);
  Wire wire = Connect(*client);
  EXPECT_EQ(wire.client_status, TlsChannel::Status::kFailed);
  EXPECT_NE(wire.client->error().find("certificate verify failed"), std::string::npos)
      << wire.client->error();
  EXPECT_EQ(wire.server_status, TlsChannel::Status::kFailed);  // told by the client's alert
  EXPECT_FALSE(wire.server->handshake_done());
}

TEST_F(TlsChannelTest, ClientRefusesACertificateForAnotherName) {
  std::shared_ptr<ClientContext> client = Client(TrustingTheTestCa());
  Wire wire = Connect(*client, "chat.example.com");
  EXPECT_EQ(wire.client_status, TlsChannel::Status::kFailed);
  EXPECT_NE(wire.client->error().find("mismatch"), std::string::npos) << wire.client->error();
}

TEST_F(TlsChannelTest, ClientRefusesAnExpiredCertificate) {
  absl::StatusOr<TestCertificates> expired =
      TestCertificates::Create(directory_ / "expired", "expired", -1);
  ASSERT_TRUE(expired.ok());
  absl::StatusOr<std::shared_ptr<const ServerContext>> server =
      ServerContext::Load({expired->cert_file, expired->key_file, ""});
  ASSERT_TRUE(server.ok());
  ClientTlsOptions options;
  options.ca_file = expired->ca_file;
  std::shared_ptr<ClientContext> client = Client(options);
  Wire wire = Connect(*client, "localhost", server->get());
  EXPECT_EQ(wire.client_status, TlsChannel::Status::kFailed);
  EXPECT_NE(wire.client->error().find("expired"), std::string::npos) << wire.client->error();
}

TEST_F(TlsChannelTest, APinnedKeyIsTrustedWithoutTheCaAndAnyOtherKeyIsNot) {
  ClientTlsOptions pinned;
  pinned.pinned_keys = {certificates_.pin};  // the system roots do not know the test CA
  std::shared_ptr<ClientContext> client = Client(pinned);
  Wire wire = Connect(*client, "any-name-at-all");
  EXPECT_TRUE(wire.client->handshake_done()) << wire.client->error();

  absl::StatusOr<TestCertificates> other = TestCertificates::Create(directory_ / "b", "other");
  ASSERT_TRUE(other.ok());
  ClientTlsOptions wrong_pin;
  wrong_pin.pinned_keys = {other->pin};
  wrong_pin.ca_file = certificates_.ca_file;  // a valid chain does not help: the pin decides
  std::shared_ptr<ClientContext> refusing = Client(wrong_pin);
  Wire refused = Connect(*refusing);
  EXPECT_EQ(refused.client_status, TlsChannel::Status::kFailed);
  EXPECT_NE(refused.client->error().find("pinned"), std::string::npos) << refused.client->error();
}

TEST_F(TlsChannelTest, BadPinsAndMissingFilesAreClearErrors) {
  ClientTlsOptions bad_pin;
  bad_pin.pinned_keys = {"sha256/not-base64"};
  EXPECT_FALSE(ClientContext::Create(bad_pin).ok());
  ClientTlsOptions missing_ca;
  missing_ca.ca_file = (directory_ / "nothing.pem").string();
  absl::StatusOr<std::shared_ptr<ClientContext>> client = ClientContext::Create(missing_ca);
  ASSERT_FALSE(client.ok());
  EXPECT_NE(client.status().message().find("nothing.pem"), std::string::npos);

  absl::StatusOr<std::shared_ptr<const ServerContext>> no_key =
      ServerContext::Load({certificates_.cert_file, (directory_ / "none.key").string(), ""});
  ASSERT_FALSE(no_key.ok());
  EXPECT_NE(no_key.status().message().find("none.key"), std::string::npos);
  absl::StatusOr<TestCertificates> other = TestCertificates::Create(directory_ / "b", "other");
  ASSERT_TRUE(other.ok());
  absl::StatusOr<std::shared_ptr<const ServerContext>> mismatched =
      ServerContext::Load({certificates_.cert_file, other->key_file, ""});
  ASSERT_FALSE(mismatched.ok());
  EXPECT_NE(mismatched.status().message().find("mismatch"), std::string::npos)
      << mismatched.status();
}

TEST_F(TlsChannelTest, ASecondConnectionResumesWithTheTicketOfTheFirst) {
  std::shared_ptr<ClientContext> client = Client(TrustingTheTestCa());
  Wire first = Connect(*client);
  ASSERT_TRUE(first.client->handshake_done());
  EXPECT_FALSE(first.client->resumed());
  Wire second = Connect(*client);
  ASSERT_TRUE(second.client->handshake_done()) << second.client->error();
  EXPECT_TRUE(second.client->resumed());
  EXPECT_TRUE(second.server->resumed());

  // A connection cut without close_notify (the first two are destroyed as a lost network would
  // end them) leaves its ticket resumable.
  {
    Wire cut = Connect(*client);
    ASSERT_TRUE(cut.client->handshake_done());
  }
  Wire after_cut = Connect(*client);
  EXPECT_TRUE(after_cut.client->resumed());

  // A reload that hands over the ticket keys still resumes; a server with new keys does not.
  absl::StatusOr<std::shared_ptr<const ServerContext>> reloaded =
      ServerContext::Load({certificates_.cert_file, certificates_.key_file, ""}, server_.get());
  ASSERT_TRUE(reloaded.ok());
  Wire after_reload = Connect(*client, "localhost", reloaded->get());
  EXPECT_TRUE(after_reload.client->resumed());
  absl::StatusOr<std::shared_ptr<const ServerContext>> fresh =
      ServerContext::Load({certificates_.cert_file, certificates_.key_file, ""});
  ASSERT_TRUE(fresh.ok());
  Wire full = Connect(*client, "localhost", fresh->get());
  ASSERT_TRUE(full.client->handshake_done()) << full.client->error();
  EXPECT_FALSE(full.client->resumed());
}

TEST_F(TlsChannelTest, ServersSharingATicketKeyFileResumeEachOthersSessions) {
  const std::string key_file = (directory_ / "ticket.key").string();
  {
    std::ofstream out(key_file, std::ios::binary);
    out << std::string(80, 'k');
  }
  ServerTlsFiles files{certificates_.cert_file, certificates_.key_file, key_file};
  absl::StatusOr<std::shared_ptr<const ServerContext>> one = ServerContext::Load(files);
  absl::StatusOr<std::shared_ptr<const ServerContext>> two = ServerContext::Load(files);
  ASSERT_TRUE(one.ok() && two.ok()) << one.status() << two.status();
  std::shared_ptr<ClientContext> client = Client(TrustingTheTestCa());
  Wire first = Connect(*client, "localhost", one->get());
  ASSERT_TRUE(first.client->handshake_done());
  Wire second = Connect(*client, "localhost", two->get());
  EXPECT_TRUE(second.client->resumed()) << "a ticket of one server resumes on the other";
  // Without the shared file each server has keys of its own.
  Wire third = Connect(*client, "localhost", server_.get());
  ASSERT_TRUE(third.client->handshake_done());
  EXPECT_FALSE(third.client->resumed());

  {
    std::ofstream out(key_file, std::ios::binary | std::ios::trunc);
    out << "short";
  }
  absl::StatusOr<std::shared_ptr<const ServerContext>> bad = ServerContext::Load(files);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("exactly 80"), std::string::npos) << bad.status();
}

TEST_F(TlsChannelTest, ServerRefusesTls11AndTls12WithoutForwardSecrecyOrAead) {
  struct Offer {
    int max_version;
    const char* ciphers;
  };
  for (const Offer& offer : {Offer{TLS1_1_VERSION, "ALL"}, Offer{TLS1_VERSION, "ALL"},
                             Offer{TLS1_2_VERSION, "ECDHE-ECDSA-AES128-SHA256"},
                             Offer{TLS1_2_VERSION, "AES128-GCM-SHA256"}}) {
    std::shared_ptr<ClientContext> client = Client(TrustingTheTestCa());
    SSL_CTX_set_security_level(client->ssl_ctx(), 0);
    SSL_CTX_set_min_proto_version(client->ssl_ctx(), TLS1_VERSION);
    SSL_CTX_set_max_proto_version(client->ssl_ctx(), offer.max_version);
    ASSERT_EQ(SSL_CTX_set_cipher_list(client->ssl_ctx(), offer.ciphers), 1);
    Wire wire = Connect(*client);
    EXPECT_EQ(wire.server_status, TlsChannel::Status::kFailed) << offer.ciphers;
    EXPECT_FALSE(wire.server->handshake_done()) << offer.ciphers;
  }
  std::shared_ptr<ClientContext> tls12 = Client(TrustingTheTestCa());
  SSL_CTX_set_max_proto_version(tls12->ssl_ctx(), TLS1_2_VERSION);
  Wire wire = Connect(*tls12);
  ASSERT_TRUE(wire.server->handshake_done()) << wire.server->error();
  EXPECT_EQ(wire.server->version(), "TLSv1.2");
  EXPECT_NE(wire.server->cipher().find("ECDHE"), std::string::npos) << wire.server->cipher();
}

TEST_F(TlsChannelTest, GarbageFailsTheServerChannelWithoutPlaintext) {
  std::unique_ptr<TlsChannel> server = TlsChannel::ForServer(*server_);
  bool got_plaintext = false;
  const TlsChannel::Status status =
      server->Feed("GET / HTTP/1.1\r\nHost: x\r\n\r\n", [&](std::string_view) {
        got_plaintext = true;
        return true;
      });
  EXPECT_EQ(status, TlsChannel::Status::kFailed);
  EXPECT_FALSE(got_plaintext);
  EXPECT_FALSE(server->error().empty());
  EXPECT_EQ(server->Write("x"), TlsChannel::Status::kFailed);
}

TEST_F(TlsChannelTest, CloseNotifyEndsThePeer) {
  std::shared_ptr<ClientContext> client = Client(TrustingTheTestCa());
  Wire wire = Connect(*client);
  wire.server->Write("last words");
  wire.server->Shutdown();
  wire.Pump();
  EXPECT_EQ(wire.at_client, "last words");
  EXPECT_EQ(wire.client_status, TlsChannel::Status::kClosedByPeer);
}

TEST_F(TlsChannelTest, AnIdleChannelHoldsNoBuffer) {
  std::shared_ptr<ClientContext> client = Client(TrustingTheTestCa());
  Wire wire = Connect(*client);
  wire.server->Write(std::string(100'000, 'y'));
  wire.Pump();
  EXPECT_FALSE(wire.server->has_output());
  EXPECT_EQ(wire.server->TakeOutput().capacity(), std::string().capacity());
}

}  // namespace
}  // namespace im::tls
