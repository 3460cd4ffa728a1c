// What TLS costs the gateway's side of a connection, on one core, with the gateway's own contexts
// (common/tls): a full handshake, a resumed one (a session ticket), and a record each way for a
// typical frame. Client and server run in one thread through memory; only the server's calls are
// timed (manual time), so the figures are the gateway's share. The memory an idle server channel
// holds is counted by glibc's allocator and reported as a counter.
// Run: build/release/common/bench/tls_bench
#include <benchmark/benchmark.h>
#include <malloc.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "common/tls/testing/test_certificates.h"
#include "common/tls/tls_channel.h"

namespace im::tls {
namespace {

struct Setup {
  Setup() {
    const std::string dir = std::filesystem::temp_directory_path() / "im-tls-bench";
    certificates = *testing::TestCertificates::Create(dir);
    server = *ServerContext::Load({certificates.cert_file, certificates.key_file, ""});
    ClientTlsOptions trust;
    trust.ca_file = certificates.ca_file;
    resuming_client = *ClientContext::Create(trust);
    trust.resume_sessions = false;
    full_client = *ClientContext::Create(trust);
  }
  testing::TestCertificates certificates;
  std::shared_ptr<const ServerContext> server;
  std::shared_ptr<ClientContext> full_client;
  std::shared_ptr<ClientContext> resuming_client;
};

Setup& Shared() {
  static Setup setup;
  return setup;
}

constexpr auto kIgnore = [](std::string_view) { return true; };

// Runs a handshake to its end; returns the seconds the server's calls took.
double Handshake(TlsChannel& client, TlsChannel& server) {
  double server_seconds = 0;
  for (int round = 0; round < 10 && (client.has_output() || server.has_output()); ++round) {
    if (client.has_output()) {
      const std::string bytes = client.TakeOutput();
      const auto start = std::chrono::steady_clock::now();
      server.Feed(bytes, kIgnore);
      server_seconds +=
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    }
    if (server.has_output()) client.Feed(server.TakeOutput(), kIgnore);
  }
  return server_seconds;
}

void BM_ServerFullHandshake(benchmark::State& state) {
  Setup& setup = Shared();
  for (auto _ : state) {
    std::unique_ptr<TlsChannel> client = TlsChannel::ForClient(*setup.full_client, "localhost");
    const auto start = std::chrono::steady_clock::now();
    std::unique_ptr<TlsChannel> server = TlsChannel::ForServer(*setup.server);
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    seconds += Handshake(*client, *server);
    if (!server->handshake_done() || server->resumed()) state.SkipWithError("no full handshake");
    state.SetIterationTime(seconds);
  }
}
BENCHMARK(BM_ServerFullHandshake)->UseManualTime();

void BM_ServerResumedHandshake(benchmark::State& state) {
  Setup& setup = Shared();
  {  // a first connection leaves a ticket
    std::unique_ptr<TlsChannel> client = TlsChannel::ForClient(*setup.resuming_client, "localhost");
    std::unique_ptr<TlsChannel> server = TlsChannel::ForServer(*setup.server);
    Handshake(*client, *server);
  }
  for (auto _ : state) {
    std::unique_ptr<TlsChannel> client = TlsChannel::ForClient(*setup.resuming_client, "localhost");
    std::unique_ptr<TlsChannel> server = TlsChannel::ForServer(*setup.server);
    state.SetIterationTime(Handshake(*client, *server));
    if (!server->resumed()) state.SkipWithError("not resumed");
  }
}
BENCHMARK(BM_ServerResumedHandshake)->UseManualTime();

// One frame of state.range(0) bytes: the server encrypts it (a push), and decrypts one (a send).
void BM_ServerRecordBothWays(benchmark::State& state) {
  Setup& setup = Shared();
  std::unique_ptr<TlsChannel> client = TlsChannel::ForClient(*setup.full_client, "localhost");
  std::unique_ptr<TlsChannel> server = TlsChannel::ForServer(*setup.server);
  Handshake(*client, *server);
  const std::string frame(static_cast<size_t>(state.range(0)), 'f');
  for (auto _ : state) {
    client->Write(frame);
    const std::string record = client->TakeOutput();
    const auto start = std::chrono::steady_clock::now();
    server->Feed(record, kIgnore);
    server->Write(frame);
    const std::string out = server->TakeOutput();
    state.SetIterationTime(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    client->Feed(out, kIgnore);
  }
  state.SetBytesProcessed(state.iterations() * state.range(0) * 2);
}
BENCHMARK(BM_ServerRecordBothWays)->UseManualTime()->Arg(200)->Arg(4096);

// Heap bytes one idle server channel keeps after its handshake and a frame each way.
void BM_IdleServerChannelBytes(benchmark::State& state) {
  Setup& setup = Shared();
  constexpr int kChannels = 1000;
  for (auto _ : state) {
    std::vector<std::unique_ptr<TlsChannel>> idle;
    const size_t before = mallinfo2().uordblks;
    for (int i = 0; i < kChannels; ++i) {
      std::unique_ptr<TlsChannel> client = TlsChannel::ForClient(*setup.full_client, "localhost");
      std::unique_ptr<TlsChannel> server = TlsChannel::ForServer(*setup.server);
      Handshake(*client, *server);
      server->Write("pong");
      client->Feed(server->TakeOutput(), kIgnore);
      client->Write("ping");
      server->Feed(client->TakeOutput(), kIgnore);
      idle.push_back(std::move(server));
    }
    state.counters["bytes_per_idle_channel"] =
        static_cast<double>(mallinfo2().uordblks - before) / kChannels;
  }
}
BENCHMARK(BM_IdleServerChannelBytes)->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace im::tls

BENCHMARK_MAIN();
