#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "common/config.h"
#include "common/deployment.h"
#include "common/grpc_tls.h"
#include "logic/group/kafka_connection.h"
#include "logic/webhooks/webhook_options.h"
#include "store/mysql_options.h"
#include "store/redis_options.h"

namespace im::logic {

enum class DeviceLimitPolicy {
  kKickOldest,  // a login beyond the cap kicks the user's least recently logged-in device
  kRefuse,      // a login beyond the cap is refused with TOO_MANY_DEVICES
};

// The credentials the code ships with, for a local run only: with either in effect, im-logic
// refuses to start unless dev_mode says this is a local run (anyone can sign tokens with a
// published secret).
inline constexpr char kDefaultTokenSecret[] = "dev-secret-change-me";
inline constexpr char kDefaultMySqlPassword[] = "im-dev";
// The admin API's key in deploy/local/logic.yaml and server.yaml.
inline constexpr char kLocalAdminApiKey[] = "dev-admin-key-change-me";
// The local Redis's (deploy/local/services.sh, ACL user im).
inline constexpr char kLocalRedisPassword[] = "im-dev-redis";
// The local Kafka broker's (deploy/local/kafka.sh, SASL user im).
inline constexpr char kLocalKafkaPassword[] = "im-dev-kafka";

// Everything an im-logic process is told at start-up. Defaults serve a local run.
struct LogicOptions {
  std::string logic_id = "logic-1";
  uint32_t node_number = 1;  // 0..1023, unique per logic node: part of every msg_id
  std::string grpc_address = "127.0.0.1:7100";
  std::string metrics_address = "0.0.0.0:9200";
  std::string token_secret = kDefaultTokenSecret;
  bool dev_mode = false;  // a local run: the default credentials are allowed
  // TLS on LogicService and on calls to gateways (grpc_tls.*; common/grpc_tls.h), the
  // certificate files read at start-up.
  common::GrpcCredentials grpc_credentials;

  uint32_t max_devices_per_user = 5;
  DeviceLimitPolicy device_limit_policy = DeviceLimitPolicy::kKickOldest;
  uint32_t max_body_bytes = 16 * 1024;
  // How long after a message its sender (or, for a recall, a group admin) may still recall or
  // edit it; later: CHANGE_WINDOW_PASSED.
  uint32_t recall_window_ms = 2 * 60'000;
  uint32_t edit_window_ms = 24 * 3600'000;
  // A user's "typing" in one conversation reaches the others at most this often (the client
  // repeats it while the user types); more often is dropped. In groups above
  // typing_max_group_members, typing is not delivered at all (it would cost a session lookup per
  // member for every keystroke burst).
  uint32_t typing_interval_ms = 3'000;
  // Abuse limits on sends (recalls and edits count) that follow the sender over all their
  // devices (the gateway limits each connection): messages a second per user, and per user in
  // one group; past the rate and burst a send is answered RESOURCE_EXHAUSTED with the wait as its
  // retry hint. Per logic node (logic/ingress/sender_limits.h). A rate of 0 turns one off.
  double send_rate_per_user = 30;
  uint32_t send_burst_per_user = 100;
  double group_send_rate_per_user = 10;
  uint32_t group_send_burst_per_user = 30;
  uint32_t typing_max_group_members = 500;
  // Group read receipts: in groups of at most this many members, ReadersReq names the readers
  // and senders get ReceiptsPush when members read; above, ReadersReq answers counts only.
  uint32_t receipt_max_group_members = 500;
  // Presence: a device watches at most presence_max_watch users, for presence_watch_ttl_sec
  // unless it repeats its PresenceSubscribeReq. A watched user's changes are pushed at most once
  // per presence_push_interval_ms (a flapping connection costs its watchers one push per
  // interval, with the latest state). Every presence_sweep_interval_ms a node takes the watched
  // users whose sessions may have lapsed (their gateway died) and pushes those that did; they
  // show offline at most session_ttl_sec plus this after the gateway went. presence_max_pending
  // bounds the changes waiting for their push; past it, changes are dropped (and counted).
  // Last-seen times are kept presence_last_seen_days.
  uint32_t presence_max_watch = 200;
  uint32_t presence_watch_ttl_sec = 300;
  uint32_t presence_push_interval_ms = 1'000;
  uint32_t presence_sweep_interval_ms = 1'000;
  uint32_t presence_max_pending = 100'000;
  uint32_t presence_last_seen_days = 30;
  // A client may resume (ResumeReq) with its last session's token this long after the token was
  // issued or renewed; later it lists every conversation.
  uint32_t resume_window_sec = 600;
  // A resume lists the conversations changed since its baseline less this: a message is stamped
  // by its node's clock and may be written up to write_deadline_ms later, and other nodes' clocks
  // may be behind the one that stamped the baseline (10 s allowed). At least write_deadline_ms.
  uint32_t resume_margin_ms = 15'000;
  uint32_t sync_page_default = 50;
  uint32_t sync_page_max = 200;
  uint32_t conversations_page_max = 200;
  uint32_t max_ack_cursors = 1000;
  // A gap in a conversation younger than this may still be filled by a write in flight, so Sync
  // stops before it; older gaps are reported as holes.
  uint32_t hole_grace_ms = 15'000;
  // A message not persisted this long after its seq was allocated is failed, never written late
  // (a late write could fill a gap already reported as a hole).
  uint32_t write_deadline_ms = 5'000;
  uint32_t session_ttl_sec = 120;
  uint32_t gateway_ttl_sec = 30;
  uint32_t dedup_ttl_sec = 24 * 3600;
  uint32_t push_timeout_ms = 2'000;
  // Push batches unanswered by one gateway (its PushStream keeps their order; on the unary Push
  // of an older gateway only 1 does).
  uint32_t push_calls_per_gateway = 4;
  uint32_t shutdown_grace_ms = 10'000;  // after SIGTERM, how long calls in flight may take
  // Redis, MySQL and Kafka are checked this often for /readyz (each on its own thread).
  uint32_t health_check_ms = 2'000;
  // After SIGTERM, /readyz fails this long before the node stops taking calls, so that load
  // balancers and DNS (a headless Service) stop sending new work first.
  uint32_t shutdown_delay_ms = 0;

  uint32_t executor_threads = 16;
  // Single-chat sends take their claims and seqs on an event loop with an asynchronous Redis
  // client (no thread blocked per round trip); false: on the executor, as in process.
  bool send_loop = true;
  uint32_t send_loop_queue = 10'000;  // stream batches waiting for the send loop
  // Commands the send loop's Redis connection may have unanswered before new send batches are
  // refused (RESOURCE_EXHAUSTED): a fast refusal while Redis is behind, instead of a backlog that
  // outgrows redis.timeout_ms and fails everything on the connection.
  uint32_t send_loop_max_pending = 10'000;
  // ... and while the oldest of them has waited this long: a backlog Redis needs longer than
  // redis.timeout_ms to answer would drop the connection and fail every delivery waiting on it.
  // Zero: no time bound; by default a quarter of redis.timeout_ms.
  uint32_t send_loop_max_redis_wait_ms = 250;
  uint32_t executor_queue = 10'000;
  // Logins run apart from other requests, so that a login storm cannot starve sends and a flood
  // of other requests cannot lock users out: a stream's logins on the login loop (with
  // send_loop), the unary Login calls and in-process logins on the login threads. login_queue
  // bounds the batches waiting for either.
  uint32_t login_threads = 4;
  uint32_t login_queue = 2'000;
  // Controlled delay on both executors' queues (common/queue_wait_policy.h): a request may wait
  // up to the interval; once a queue has not been empty for a whole interval, what waited longer
  // than the target is refused RESOURCE_EXHAUSTED with a retry hint instead of served late.
  // A zero interval turns it off.
  uint32_t queue_wait_target_ms = 50;
  uint32_t queue_wait_interval_ms = 500;
  // Requests one gateway stream may have in logic at once; past it, logic stops reading that
  // stream.
  uint32_t stream_max_in_flight = 10'000;
  // A gateway's connection is told to go away (HTTP/2 GOAWAY) after this long, and each of its
  // streams ends gracefully within it: the gateway reconnects and asks DNS again, so logic nodes
  // added by a scale-up get traffic within about this long. Zero: connections live for ever.
  uint32_t max_connection_age_ms = 300'000;
  // After that, how long calls on the old connection may take before it is closed (added to the
  // age, as a stream opened just before GOAWAY may live one age more).
  uint32_t max_connection_age_grace_ms = 30'000;
  uint32_t writers = 2;  // group-commit threads: while some commit (fsync), others gather
  uint32_t write_batch_max = 256;
  uint32_t write_queue = 20'000;
  // Stored messages waiting to be pushed (single chat) or published for fan-out (groups), per
  // stage; past it the push is skipped and recipients get the message by sync.
  uint32_t delivery_queue = 20'000;

  // Groups (DESIGN.md section 6).
  uint32_t group_member_cap = 10'000;
  // Messages of groups with more members than this fan out on their own lane (topic), so that a
  // huge group never holds up the messages of small ones.
  uint32_t group_large_threshold = 1'000;
  uint32_t group_members_page_max = 500;
  uint32_t group_cache_ttl_sec = 24 * 3600;    // Redis member lists unused this long expire
  uint32_t group_local_cache_groups = 10'000;  // member lists each node keeps in memory

  // Fan-out of group messages.
  uint32_t fanout_batch_max = 500;    // records handled (and committed) together
  uint32_t fanout_lookup_page = 500;  // members whose sessions are looked up per round trip
  uint32_t fanout_queue = 100'000;    // in-process lanes (single-node mode and Kafka fallback)
  // Conversations whose recently delivered seqs a node remembers, so that a record Kafka hands
  // over again is not pushed twice (RecentSeqs; ~200 bytes each).
  uint32_t fanout_remembered_conversations = 100'000;

  // Kafka: empty brokers = in-process fan-out (single node only: no other node sees the records).
  // The connection (brokers, security protocol, login, TLS files) is KafkaConnection's.
  struct Kafka : KafkaConnection {
    std::string topic_prefix = "im.";  // topics <prefix>fanout and <prefix>fanout.large
    std::string consumer_group = "im-fanout";
    uint32_t partitions = 8;
    uint32_t replication_factor = 1;
    // A record Kafka has not acknowledged after this long, while Kafka acknowledged nothing else
    // either (the producer stalled), is pushed by this node directly (UnackedRecords). A group
    // send waits for this when Kafka is down, so it must stay well below the gateways'
    // gateway.logic_timeout_ms (5 s), or such sends time out instead of succeeding.
    uint32_t fallback_after_ms = 2'000;
    uint32_t session_timeout_ms = 10'000;  // a dead node's partitions move after this
    // How long the brokers keep a fan-out record (the topics' retention.ms, set when logic
    // creates them): a group message's body, recalled or not, stays in Kafka this long, and a
    // consumer group that falls further behind loses those pushes (members sync the messages).
    uint32_t retention_ms = 3'600'000;
    uint32_t startup_timeout_ms = 30'000;  // creating the topics at start-up
  } kafka;

  // The admin REST API (logic/admin/admin_api.h, docs/admin-api.md): off unless listen is set,
  // then only with a key (a secret of at least 16 bytes, sent as "Authorization: Bearer <key>").
  struct AdminApi {
    std::string listen;  // host:port; empty: off
    std::string key;
    uint32_t max_body_bytes = 1 << 20;  // larger requests: 413 BODY_TOO_LARGE
    uint32_t timeout_ms = 5'000;        // a call not answered by then: 504 DEADLINE_EXCEEDED
    uint32_t threads = 8;               // requests served at once
  } admin_api;
  // Mutes and token revocations (logic/admin/restrictions.h) put through another node reach
  // this one within this long.
  uint32_t restrictions_reload_ms = 1'000;
  // A revocation of a user's tokens is kept this long: tokens must not live longer (their exp),
  // or one issued before the revocation would log in again once it is forgotten.
  uint32_t revocation_keep_sec = 30 * 86'400;

  // Business callbacks to the app server (logic/webhooks, docs/callbacks.md): off until an
  // endpoint's URL is set.
  WebhookOptions webhooks;

  store::RedisOptions redis;
  store::MySqlOptions mysql;

  std::string log_level = "info";
  std::string log_format = "text";

  // Reads every key under "logic.", "group.", "fanout.", "kafka.", "redis.", "mysql." and "log.";
  // all errors reported at once. The embedded node reads none of the cluster's keys (logic's
  // listen addresses, redis., mysql., kafka., the gateway links' tuning): they keep their
  // defaults and are unknown keys in its config.
  static absl::StatusOr<LogicOptions> FromConfig(
      common::Config& config, common::Deployment deployment = common::Deployment::kCluster);
};

}  // namespace im::logic
