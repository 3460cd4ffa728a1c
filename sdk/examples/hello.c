/* The C example of sdk/README.md: log in, send one message to a peer, wait for the peer's reply.
 * Usage: im_sdk_example_c <gateway host:port> <token> <peer uid>
 * Exit status 0 once a message from the peer arrived, 1 on timeout (30 s) or failure. */
#include <im/im_client.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

struct app {
  const char* peer;
  atomic_int sent;    /* 1 sent, -1 failed */
  atomic_int replied; /* a message from the peer arrived */
};

static void on_state(void* user_data, int state, int code, const char* reason) {
  (void)user_data;
  printf("state %d (%d %s)\n", state, code, reason);
}

static void on_messages(void* user_data, const im_message* messages, size_t count) {
  struct app* app = user_data;
  for (size_t i = 0; i < count; ++i) {
    printf("%s #%llu %s: %.*s\n", messages[i].conv_id, (unsigned long long)messages[i].seq,
           messages[i].sender, (int)messages[i].body_len, messages[i].body);
    if (strcmp(messages[i].sender, app->peer) == 0) atomic_store(&app->replied, 1);
  }
}

static void on_send_result(void* user_data, const char* client_msg_id, int code,
                           const char* conv_id, uint64_t seq) {
  struct app* app = user_data;
  printf("send %s: code %d, %s #%llu\n", client_msg_id, code, conv_id, (unsigned long long)seq);
  atomic_store(&app->sent, code == 0 ? 1 : -1);
}

int main(int argc, char** argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s <gateway host:port> <token> <peer uid>\n", argv[0]);
    return 2;
  }
  struct app app = {argv[3], 0, 0};
  const char* gateways[] = {argv[1]};
  im_client_config config = {gateways, 1, argv[2], "c-example", NULL, 10000};
  im_client_callbacks callbacks = {&app, on_state, on_messages, on_send_result, NULL};
  char error[256];
  im_client* client = im_client_create(&config, &callbacks, error, sizeof error);
  if (client == NULL) {
    fprintf(stderr, "im_client_create: %s\n", error);
    return 1;
  }
  im_client_start(client);
  char id[64];
  im_client_send(client, NULL, app.peer, "hello from C", strlen("hello from C"), id, sizeof id);
  printf("queued %s\n", id);

  const struct timespec tick = {0, 50 * 1000 * 1000};
  for (int i = 0; i < 600 && atomic_load(&app.sent) >= 0 && !atomic_load(&app.replied); ++i) {
    nanosleep(&tick, NULL);
  }
  const int ok = atomic_load(&app.sent) == 1 && atomic_load(&app.replied);
  im_client_destroy(client);
  printf("%s\n", ok ? "done" : "failed");
  return ok ? 0 : 1;
}
