#pragma once

#include <pthread.h>
#include <signal.h>

namespace im::common {

// A write to a socket whose peer has gone raises SIGPIPE in the writing thread, and libuv and
// hiredis write with write(2): a thread that writes to sockets on behalf of a library (an app's
// SDK loop, the Redis TLS bridge) blocks it, so that the write fails with EPIPE, which ends that
// connection like any other error, instead of killing a process that never asked to ignore it.
inline void BlockSigpipeInThisThread() {
  sigset_t pipe_signal;
  sigemptyset(&pipe_signal);
  sigaddset(&pipe_signal, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_signal, nullptr);
}

}  // namespace im::common
