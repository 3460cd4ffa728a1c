#pragma once

#include <hiredis/async.h>
#include <uv.h>

namespace im::store {

// Drives a hiredis asynchronous context from a libuv loop, in place of hiredis's own libuv
// adapter: the one Debian 12 ships (hiredis 0.14) drops the poll errors libuv reports (a refused
// connect, a reset connection), so hiredis never learns of them and its commands wait for a
// timeout, and the reason is lost. Here an error is handed to hiredis as the events it waited
// for: its read or connect check then fails with the socket's error ("Connection refused"), and
// it disconnects as it does for any other failure.
// Returns REDIS_ERR when the context already has event hooks.
int AttachToLoop(redisAsyncContext* context, uv_loop_t* loop);

}  // namespace im::store
