#pragma once

#include <uv.h>

#include <atomic>
#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "common/admission_limit.h"
#include "common/conn_id.h"
#include "common/loop_task_queue.h"
#include "gateway/connection.h"
#include "gateway/gateway_metrics.h"
#include "gateway/gateway_options.h"
#include "gateway/logic_link.h"
#include "gateway/source_limits.h"

namespace im::gateway {

// One event loop on its own thread, owning its connections outright (no locks on the hot path).
// Other threads reach it only through Post() and the helpers built on it.
// Timeouts are kept without a timer per connection: connections sit in lists ordered by the time
// that matters (accept, last frame, start of closing) and one sweep timer walks each list from its
// oldest end, stopping at the first that has not expired.
class WorkerLoop {
 public:
  using Task = common::LoopTaskQueue::Task;
  using ConnectionTask = absl::AnyInvocable<void(Connection&) &&>;

  WorkerLoop(uint32_t index, const GatewayOptions& options, GatewayMetrics* metrics,
             LogicLink* logic, common::AdmissionLimit* logins, SourceLimits* sources,
             uint64_t instance_seed);
  ~WorkerLoop();  // joins the thread; call Shutdown() first
  WorkerLoop(const WorkerLoop&) = delete;
  WorkerLoop& operator=(const WorkerLoop&) = delete;

  // Starts the loop's thread.
  void Start();

  // --- Any thread. Each returns false (and counts it) when the loop's queue refuses the task.
  bool Post(Task task);
  // Hands a freshly accepted socket to this loop; the socket is closed if the loop refuses it.
  // With `tls`, the client speaks TLS and is presented that context's certificate; with
  // `websocket`, WebSocket (inside TLS, with both).
  bool AdoptSocket(int fd, std::shared_ptr<const tls::ServerContext> tls = nullptr,
                   bool websocket = false);
  // Runs `task` on the connection if it still exists, else `on_missing` (may be empty), both on
  // the loop thread.
  bool PostToConnection(common::ConnId id, ConnectionTask task, Task on_missing = nullptr);
  // Sends GoAway to every connection and refuses new ones. Each connection's hint is
  // `reconnect_after_ms` plus a random share of `spread_ms`, so that clients move at different
  // times.
  bool BeginDrain(uint32_t reconnect_after_ms, uint32_t spread_ms);
  // Closes every connection and every handle; the thread then exits. Join() waits for it.
  void Shutdown();
  void Join();

  size_t connection_count() const { return connection_count_.load(std::memory_order_relaxed); }
  uint32_t index() const { return index_; }

  // --- Loop thread only.
  Connection* Find(common::ConnId id);
  uv_loop_t* loop() { return &loop_; }
  uint64_t now_ms() { return uv_now(&loop_); }
  const GatewayOptions& options() const { return options_; }
  GatewayMetrics& metrics() { return *metrics_; }
  LogicLink& logic() { return *logic_; }
  common::AdmissionLimit& logins() { return *logins_; }  // shared by every loop of the process
  SourceLimits& sources() { return *sources_; }          // shared by every loop of the process
  // Where this loop's connections send client requests (all but ping).
  RequestStream& logic_stream() { return *logic_stream_; }
  // Tells logic a closed connection's session is gone: the disconnects of one iteration leave
  // together, in one DisconnectMany, when the loop is about to wait. Any thread: off the loop
  // (its thread ended), the disconnect leaves at once on its own.
  void QueueDisconnect(im::v1::DisconnectRequest request);
  // One read buffer per loop: libuv calls alloc, read and the read callback back to back for one
  // stream, so connections never hold a read buffer between reads.
  uv_buf_t ReadBuffer();

  // Flushes the connection's queued frames when the loop is about to wait for I/O (a uv_prepare
  // handle), so that what one iteration wrote leaves in one write per connection; the requests
  // the iteration read leave for logic in one batch the same way.
  void ScheduleFlush(common::ConnId id) { to_flush_.push_back(id); }
  // Moves a connection to the tail of a timeline (it just did something worth a fresh timeout).
  void Touch(Connection* connection, Connection::Timeline timeline);
  // Called by a connection from its close callback: forgets and deletes it.
  void Forget(Connection* connection);

 private:
  void Run();
  void Accept(int fd, const tls::ServerContext* tls, bool websocket);
  // Why a connection from `source` is refused at accept (nullptr: admitted, and counted against
  // its source's cap).
  const char* AcceptRefusal(uint64_t source);
  void Sweep();
  void FlushScheduled();
  void FlushDisconnects();
  void RefreshSessions();
  void CloseAll(CloseReason reason);
  void CloseHandles();
  std::list<Connection*>& ListOf(Connection::Timeline timeline);

  const uint32_t index_;
  const GatewayOptions& options_;
  const WebSocketSession::Options websocket_options_;  // of every WebSocket connection
  GatewayMetrics* metrics_;
  LogicLink* logic_;
  common::AdmissionLimit* logins_;
  SourceLimits* sources_;

  uv_loop_t loop_;
  uv_timer_t sweep_timer_;
  uv_timer_t refresh_timer_;
  uv_prepare_t flush_prepare_;
  common::LoopTaskQueue tasks_;
  std::unique_ptr<RequestStream> logic_stream_;
  im::v1::DisconnectManyRequest disconnects_;  // loop thread: queued this iteration
  common::ConnIdAllocator ids_;
  std::thread thread_;
  std::atomic<std::thread::id> loop_thread_;  // while Run runs

  std::unordered_map<common::ConnId, std::unique_ptr<Connection>> connections_;
  std::list<Connection*> unauthenticated_;  // by accept time
  std::list<Connection*> live_;             // by last frame received
  std::list<Connection*> closing_;          // by start of closing
  std::vector<char> read_buffer_;
  // Connections with queued frames, by id: one closed meanwhile is simply not found.
  std::vector<common::ConnId> to_flush_;
  std::vector<common::ConnId> flushing_;
  bool started_ = false;
  bool draining_ = false;
  bool shutting_down_ = false;
  std::atomic<size_t> connection_count_{0};
  prometheus::Gauge& queue_depth_;
};

}  // namespace im::gateway
