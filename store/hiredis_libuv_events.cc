#include "store/hiredis_libuv_events.h"

namespace im::store {
namespace {

// One per context: the socket's poll handle and the events hiredis waits for.
struct PollEvents {
  redisAsyncContext* context;  // null once hiredis let go of it (cleanup)
  uv_poll_t poll;
  int wanted = 0;  // UV_READABLE | UV_WRITABLE
};

PollEvents* EventsOf(void* privdata) { return static_cast<PollEvents*>(privdata); }

void OnPoll(uv_poll_t* poll, int status, int ready) {
  PollEvents* events = static_cast<PollEvents*>(poll->data);
  // libuv stops the handle on an error and says nothing of which events were ready: hand hiredis
  // the ones it waits for, whose read or write then finds the socket's error.
  if (status != 0) ready = events->wanted;
  if (events->context != nullptr && (ready & UV_READABLE) != 0) {
    redisAsyncHandleRead(events->context);
  }
  // Reading may have ended the context (a closed connection): cleanup cleared it.
  if (events->context != nullptr && (ready & UV_WRITABLE) != 0) {
    redisAsyncHandleWrite(events->context);
  }
}

void Want(PollEvents* events, int wanted) {
  events->wanted = wanted;
  if (wanted != 0) {
    uv_poll_start(&events->poll, wanted, OnPoll);
  } else {
    uv_poll_stop(&events->poll);
  }
}

void AddRead(void* privdata) { Want(EventsOf(privdata), EventsOf(privdata)->wanted | UV_READABLE); }
void DelRead(void* privdata) {
  Want(EventsOf(privdata), EventsOf(privdata)->wanted & ~UV_READABLE);
}
void AddWrite(void* privdata) {
  Want(EventsOf(privdata), EventsOf(privdata)->wanted | UV_WRITABLE);
}
void DelWrite(void* privdata) {
  Want(EventsOf(privdata), EventsOf(privdata)->wanted & ~UV_WRITABLE);
}

// hiredis is done with the context (it is being freed): the handle closes, and its memory goes
// with it once libuv is done with it too.
void Cleanup(void* privdata) {
  PollEvents* events = EventsOf(privdata);
  events->context = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(&events->poll),
           [](uv_handle_t* handle) { delete static_cast<PollEvents*>(handle->data); });
}

}  // namespace

int AttachToLoop(redisAsyncContext* context, uv_loop_t* loop) {
  if (context->ev.data != nullptr) return REDIS_ERR;
  auto* events = new PollEvents{context, {}, 0};
  if (uv_poll_init_socket(loop, &events->poll, context->c.fd) != 0) {
    delete events;
    return REDIS_ERR;
  }
  events->poll.data = events;
  context->ev.addRead = AddRead;
  context->ev.delRead = DelRead;
  context->ev.addWrite = AddWrite;
  context->ev.delWrite = DelWrite;
  context->ev.cleanup = Cleanup;
  context->ev.data = events;
  return REDIS_OK;
}

}  // namespace im::store
