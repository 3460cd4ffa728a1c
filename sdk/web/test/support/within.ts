// `promise`'s value, or "late" when `ms` pass first. The timer is cleared either way: left
// running, it would keep the test file's process (node --test runs one per file) alive for the
// rest of `ms` after its last test.
export async function within<T>(promise: Promise<T>, ms: number): Promise<T | "late"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<"late">((resolve) => {
    timer = setTimeout(() => resolve("late"), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}
