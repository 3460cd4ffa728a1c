#!/usr/bin/env bash
# Builds the runtime image's file tree without Docker (deploy/docker/build-rootfs.sh) around this
# build's binaries: fails if a shared library they need is not in it or does not load. Then shows
# that the check can fail: with libuv1 left out of the package list, it must name libuv.so.1.
# A sanitizer build's binaries also need the sanitizer runtimes, which the image (built without
# sanitizers) does not: they are added as extra packages here, found with dpkg. Such a build does
# not link the image's allocator (jemalloc: sanitizers bring their own), so libjemalloc2 is left
# out of the list it is checked against.
# Usage: tests/deploy/rootfs_test.sh WORK_DIR BINARY...
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
WORK="$1"
shift
BUILD_ROOTFS="$ROOT/deploy/docker/build-rootfs.sh"
LIST="$ROOT/deploy/docker/runtime-packages.txt"

extra=()
for binary in "$@"; do
  sanitizers="$(readelf -d "$binary" |
    sed -n 's/.*(NEEDED).*\[\(lib[a-z]*san\.so[.0-9]*\)\]/\1/p')"
  for soname in $sanitizers; do
    path="$(ldd "$binary" | awk -v so="$soname" '$1 == so {print $3}')"
    package="$(dpkg -S "$(readlink -f "$path")" | head -1 | cut -d: -f1)"
    [ -n "$package" ] || { echo "rootfs_test: no package owns $path ($soname)" >&2; exit 1; }
    extra+=("$package")
  done
done
extra_list="$(printf '%s\n' "${extra[@]}" | sort -u | tr '\n' ' ')"
[ -z "$extra_list" ] || echo "rootfs_test: sanitizer runtimes added for this build: $extra_list"

mkdir -p "$WORK"
packages="$WORK/packages.txt"
if [ ${#extra[@]} -gt 0 ]; then
  grep -vx 'libjemalloc2' "$LIST" >"$packages"
  echo "rootfs_test: a sanitizer build: checked without libjemalloc2"
else
  cp "$LIST" "$packages"
fi
"$BUILD_ROOTFS" --out "$WORK/rootfs" --packages "$packages" --extra-packages "$extra_list" "$@"

echo "rootfs_test: self-test: the same without libuv1 must fail and name libuv.so.1"
grep -vx 'libuv1' "$packages" >"$WORK/without-libuv1.txt"
# (One binary is enough to show it.)
if "$BUILD_ROOTFS" --out "$WORK/rootfs-without-libuv1" --packages "$WORK/without-libuv1.txt" \
    --extra-packages "$extra_list" "$1" 2>"$WORK/without-libuv1.log"; then
  echo "rootfs_test: FAIL: build-rootfs.sh accepted a tree without libuv1" >&2
  exit 1
fi
if ! grep -q 'libuv.so.1 is not in the image' "$WORK/without-libuv1.log"; then
  echo "rootfs_test: FAIL: build-rootfs.sh failed without naming libuv.so.1:" >&2
  cat "$WORK/without-libuv1.log" >&2
  exit 1
fi
grep 'libuv.so.1' "$WORK/without-libuv1.log" | head -2
rm -rf "$WORK/rootfs-without-libuv1"
echo "rootfs_test: ok"
