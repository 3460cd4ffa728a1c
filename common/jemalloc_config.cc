// jemalloc's options for the servers, read by jemalloc before main (MALLOC_CONF in the environment
// is applied after them, so an operator can still change any). Compiled into im-logic and
// im-gateway only when they link jemalloc (CMakeLists.txt, im_allocator).
//
// background_thread: a jemalloc thread purges the dirty pages of idle arenas after the decay
// time. Without it an arena purges only when its own thread allocates again, so the pages a login
// storm's threads dirtied stayed: logic kept 63 MB after a 100,000-login storm that began at
// 32 MB, and each gateway 38-40 MB from 23 MB (docs/benchmarks.md, logins at scale).
extern "C" {
// NOLINTNEXTLINE: the name jemalloc looks for.
const char* malloc_conf = "background_thread:true";
}
