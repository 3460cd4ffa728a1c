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

/* Message types (im_message.type, im_client_send_message). RECALL and EDIT change the earlier
 * message at ref_seq of the same conversation: the app applies them to the message it shows
 * (history and sync already return that message's current version). */
enum {
  IM_MESSAGE_TEXT = 1,
  IM_MESSAGE_IMAGE = 2,
  IM_MESSAGE_FILE = 3,
  IM_MESSAGE_CUSTOM = 4,
  IM_MESSAGE_SYSTEM = 5,
  IM_MESSAGE_RECALL = 6, /* body empty */
  IM_MESSAGE_EDIT = 7    /* body: the new body */
};

/* Group roles (im_group_member.role, im_client_set_group_role). */
enum { IM_ROLE_MEMBER = 1, IM_ROLE_ADMIN = 2, IM_ROLE_OWNER = 3 };

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
  uint64_t ref_seq;  /* RECALL and EDIT: the seq they change */
  int recalled;      /* 1: recalled, its body deleted */
  int64_t edited_ms; /* when an EDIT last replaced its body; 0: never */
} im_message;

typedef struct im_conversation {
  const char* conv_id;
  uint64_t max_seq;
  uint64_t read_seq;
  uint64_t unread;
  uint64_t peer_read_seq;
  const im_message* last_message; /* NULL when the conversation has none */
  int64_t updated_ms;
} im_conversation;

typedef struct im_group_member {
  const char* uid;
  int role; /* IM_ROLE_* */
  uint64_t joined_seq;
} im_group_member;

/* Whether a watched user is online (im_client_watch_presence, im_client_set_on_presence). */
typedef struct im_presence {
  const char* uid;
  int online;                 /* 1: at least one device logged in */
  const char* const* devices; /* the devices logged in, in name order (their platforms:
                                 im_presence_platform) */
  size_t device_count;
  int64_t last_seen_ms; /* offline: when its last device left (0: not known); online: 0 */
} im_presence;

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
  /* `uid` is typing in conv_id: show it for a few seconds (it repeats while they type). */
  void (*on_typing)(void* user_data, const char* conv_id, const char* uid);
} im_client_callbacks;

typedef struct im_client_config {
  const char* const* gateways; /* "host:port", or "tls://host:port" for a gateway's TLS port */
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
/* How the client trusts gateways reached over TLS ("tls://" addresses). Without it
 * (im_client_create) the system's CA roots are trusted and the certificate must name the address's
 * host. */
typedef struct im_client_tls_config {
  const char* ca_file; /* PEM file of the CAs to trust; NULL: the system's roots */
  /* "sha256/<base64 of the SHA-256 of the certificate's SubjectPublicKeyInfo>" strings. When
   * given, a gateway is trusted if and only if its key is one of them (no CA or name check). */
  const char* const* pinned_keys;
  size_t pinned_key_count;
  const char* server_name; /* the name the certificate must carry; NULL: the address's host */
} im_client_tls_config;

/* im_client_create with TLS trust settings (tls may be NULL). NULL, with the reason in `error`,
 * when they are unusable too: a CA file that cannot be read, a malformed pin. */
im_client* im_client_create_with_tls(const im_client_config* config,
                                     const im_client_tls_config* tls,
                                     const im_client_callbacks* callbacks, char* error,
                                     size_t error_len);
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

/* im_client_send with a message type (IM_MESSAGE_TEXT, _IMAGE, _FILE or _CUSTOM). */
int im_client_send_message(im_client* client, const char* conv_id, const char* to_uid, int type,
                           const char* body, size_t body_len, char* out_id, size_t out_id_len);

/* Recalls (deletes for everyone) or edits the message at `seq` of conv_id: this user's own, or,
 * for a recall, anyone's in a group this user administers; within the server's window. Queued and
 * retried like a send: returns 0 (the client_msg_id in out_id) or -1 on bad arguments, and
 * on_send_result follows exactly once (code 114 CHANGE_WINDOW_PASSED, 115 NOT_CHANGEABLE, 7
 * PERMISSION_DENIED or 5 NOT_FOUND when refused). Every device then gets the change as a message
 * of type IM_MESSAGE_RECALL or IM_MESSAGE_EDIT. */
int im_client_recall(im_client* client, const char* conv_id, uint64_t seq, char* out_id,
                     size_t out_id_len);
int im_client_edit(im_client* client, const char* conv_id, uint64_t seq, const char* body,
                   size_t body_len, char* out_id, size_t out_id_len);

/* Tells the others in conv_id that this user is typing (their on_typing). Fire and forget; call
 * it every few seconds while the user types. */
void im_client_typing(im_client* client, const char* conv_id);

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

/* Groups. Each `done` runs once, with code 0 or a failure code (an im.v1.Code: 106 NOT_MEMBER,
 * 113 GROUP_FULL, 7 PERMISSION_DENIED, ...). */
typedef void (*im_status_cb)(void* user_data, int code);
typedef void (*im_group_created_cb)(void* user_data, int code, const char* group_id,
                                    const char* conv_id);
typedef void (*im_group_members_cb)(void* user_data, int code, const im_group_member* members,
                                    size_t count);
/* Creates a group with this user as OWNER and `members` (may be empty) as MEMBERs. */
void im_client_create_group(im_client* client, const char* name, const char* const* members,
                            size_t member_count, im_group_created_cb done, void* user_data);
/* Adds `uids` (an admin's call), or with uid_count 0 this user joins. */
void im_client_join_group(im_client* client, const char* group_id, const char* const* uids,
                          size_t uid_count, im_status_cb done, void* user_data);
/* uid NULL: this user leaves; else an admin removes uid. */
void im_client_leave_group(im_client* client, const char* group_id, const char* uid,
                           im_status_cb done, void* user_data);
/* Every member, in uid order (paged under the hood). */
void im_client_list_group_members(im_client* client, const char* group_id, im_group_members_cb done,
                                  void* user_data);
/* Group read receipts: how many members have read the message at `seq` of a group conversation,
 * and with names != 0, who (readers, in uid order; none when counts_only: the group is above the
 * server's limit, 500 members). Senders also get on_read_receipt as members read. */
typedef void (*im_readers_cb)(void* user_data, int code, uint64_t read_count, uint64_t unread_count,
                              const char* const* readers, size_t reader_count, int counts_only);
void im_client_list_readers(im_client* client, const char* conv_id, uint64_t seq, int names,
                            im_readers_cb done, void* user_data);
/* The owner makes uid an IM_ROLE_ADMIN or IM_ROLE_MEMBER, or hands IM_ROLE_OWNER to it. */
void im_client_set_group_role(im_client* client, const char* group_id, const char* uid, int role,
                              im_status_cb done, void* user_data);

/* Presence. Watched users whose state the app has not heard yet: every one in the first answer
 * to a new list, then each change the server pushes, and after a reconnect those that changed
 * while the device was away. */
typedef void (*im_presence_cb)(void* user_data, const im_presence* presences, size_t count);
/* The platform presence->devices[index] logged in with ("ios", "android", "web", ...; "" when it
 * named none), or NULL for an index past device_count or a presence not handed to the callback
 * under way. Only within a presence callback (im_presence_cb, im_presence_watch_cb), for the
 * presences it was given, on its thread: the string dies with the callback. Since 1.2.0. */
const char* im_presence_platform(const im_presence* presence, size_t index);
/* Sets the presence callback (NULL: none) and the user_data passed to it. It has its own setter
 * because im_client_callbacks cannot grow: an app built against an earlier header passes the
 * smaller struct. May be called at any time, from any thread (a callback already under way may
 * still run the one set before). */
void im_client_set_on_presence(im_client* client, im_presence_cb on_presence, void* user_data);
/* Watches whether uids[0..count) are online, replacing the list watched so far; count 0 stops
 * watching. The server refuses users this user shares no conversation with and lists above its
 * limit (200 by default). The SDK keeps the list: it sends it again after every login and
 * before the server's watch expires, until the next call. `done` (may be NULL) runs once: code 0
 * with the watched users' presences (in uid order; on_presence gets them too) and the refused
 * uids (not watched); or the server's failure code; or 4 DEADLINE_EXCEEDED when there was no
 * answer within the request timeout (the list stays watched and goes out once connected); or 1
 * CANCELLED when a later call replaced the list before it was sent, or the client was stopped.
 * Bad arguments (client NULL, uids NULL with count > 0, a NULL uid) answer 3 INVALID_ARGUMENT on
 * the calling thread and leave the list as it was. */
typedef void (*im_presence_watch_cb)(void* user_data, int code, const im_presence* presences,
                                     size_t count, const char* const* refused,
                                     size_t refused_count);
void im_client_watch_presence(im_client* client, const char* const* uids, size_t count,
                              im_presence_watch_cb done, void* user_data);

#ifdef __cplusplus
}
#endif

#endif /* IM_SDK_IM_CLIENT_H_ */
