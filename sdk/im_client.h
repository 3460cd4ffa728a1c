/* The SDK's C API: opaque handles and plain callbacks over the C++ core (sdk/client.h), for
 * Android (JNI), iOS (Swift) and other bindings. No C++ types cross this boundary.
 *
 * Threading: every function may be called from any thread. Callbacks run on the client's network
 * thread, one at a time, in the order things happened; they must return quickly and must not
 * call im_client_destroy. Strings and messages passed to a callback are valid only during it.
 */
#ifndef IM_SDK_IM_CLIENT_H_
#define IM_SDK_IM_CLIENT_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct im_client im_client;

/* Connection states (im_client_state, on_state). */
enum {
  IM_STATE_IDLE = 0,
  IM_STATE_CONNECTING = 1,
  IM_STATE_CONNECTED = 2,
  IM_STATE_KICKED = 3,     /* logged in elsewhere or removed by an admin: no reconnect */
  IM_STATE_AUTH_FAILED = 4 /* token refused: call im_client_set_token */
};

/* A message as delivered. body is not NUL-terminated: use body_len. */
typedef struct im_message {
  const char* conv_id;
  uint64_t seq;
  uint64_t msg_id;
  const char* sender;
  const char* client_msg_id;
  int type;
  const char* body;
  size_t body_len;
  int64_t created_ms;
} im_message;

typedef struct im_conversation {
  const char* conv_id;
  uint64_t max_seq;
  uint64_t read_seq;
  uint64_t unread;
  uint64_t peer_read_seq;
} im_conversation;

typedef struct im_callbacks {
  void* user_data; /* passed back to every callback */
  void (*on_state)(void* user_data, int state, int code, const char* reason);
  /* Messages of one conversation in seq order, each once. */
  void (*on_messages)(void* user_data, const im_message* messages, size_t count);
  /* code 0: sent with `seq`; otherwise failed for good (an im.v1.Code). */
  void (*on_send_result)(void* user_data, const char* client_msg_id, int code, const char* conv_id,
                         uint64_t seq);
  void (*on_read_receipt)(void* user_data, const char* conv_id, const char* reader,
                          uint64_t read_seq);
} im_client_callbacks;

typedef struct im_client_config {
  const char* const* gateways; /* "host:port" strings */
  size_t gateway_count;
  const char* token;
  const char* device;      /* NULL: "default" */
  const char* sqlite_path; /* NULL: state in memory; else cursors and outbox survive restarts */
  int64_t send_timeout_ms; /* 0: retry for as long as the client lives */
} im_client_config;

/* Creates a client (not connected yet). NULL on bad arguments or when the SQLite file cannot be
 * opened; `error` (may be NULL) then receives a message of at most error_len bytes. */
im_client* im_client_create(const im_client_config* config, const im_client_callbacks* callbacks,
                            char* error, size_t error_len);
/* Stops the client and frees it; no callback runs after it returns. */
void im_client_destroy(im_client* client);

void im_client_start(im_client* client);
void im_client_stop(im_client* client);
void im_client_set_token(im_client* client, const char* token);
int im_client_state(const im_client* client);

/* Queues a message to a conversation ("s:a:b", "g:<group>") or, with conv_id NULL, to the
 * single chat with to_uid. Writes the client_msg_id (NUL-terminated, 33 bytes suffice) into
 * out_id when not NULL. Returns 0, or -1 on bad arguments. on_send_result follows exactly once. */
int im_client_send(im_client* client, const char* conv_id, const char* to_uid, const char* body,
                   size_t body_len, char* out_id, size_t out_id_len);

/* Marks a conversation read up to read_seq (fire and forget; the result is logged). */
void im_client_mark_read(im_client* client, const char* conv_id, uint64_t read_seq);

/* Lists conversations; `done` runs once with code 0 and the list, or a failure code. */
typedef void (*im_conversations_cb)(void* user_data, int code, const im_conversation* items,
                                    size_t count);
void im_client_list_conversations(im_client* client, im_conversations_cb done, void* user_data);

/* Up to `limit` messages before before_seq (0: before the newest delivered), in seq order. */
typedef void (*im_history_cb)(void* user_data, int code, const im_message* messages, size_t count);
void im_client_load_history(im_client* client, const char* conv_id, uint64_t before_seq,
                            uint32_t limit, im_history_cb done, void* user_data);

#ifdef __cplusplus
}
#endif

#endif /* IM_SDK_IM_CLIENT_H_ */
