// jemalloc's options for the servers, read by jemalloc before main (MALLOC_CONF in the environment
// is applied after them, so an operator can still change any). Compiled into im-logic and
// im-gateway only when they link jemalloc (CMakeLists.txt, im_allocator). What each bought after a
// 100,000-login storm is in docs/benchmarks.md (logins at scale, memory); none changed the CPU per
// message measurably (single chat at 18,000/s, alternated builds: 85-88 us either way).
//
// background_thread: a jemalloc thread purges the dirty pages of idle arenas after the decay
//   time. Without it an arena purges only when its own thread allocates again, so the pages a login
//   storm's threads dirtied stayed: logic kept 63 MB after a storm that began at 32 MB, and each
//   gateway 38-40 MB from 23 MB.
// percpu_arena:percpu: one arena per CPU instead of four, which the threads share by the CPU they
//   run on: fewer half-empty pages spread over arenas after a storm (logic's peak 63 -> 50 MB).
// tcache_max:4096: threads cache freed blocks of up to 4 KiB only (not 32 KiB): the caches of
//   threads that go idle after a storm (gRPC's, the loops') held ~6 MB in logic. Pool threads
//   also flush theirs when idle (common/allocator.h).
extern "C" {
// NOLINTNEXTLINE: the name jemalloc looks for.
const char* malloc_conf = "background_thread:true,percpu_arena:percpu,tcache_max:4096";
}
