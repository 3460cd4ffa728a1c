#!/usr/bin/env bash
# The SDK as an app gets it: installs the sdk component of a build tree into a fresh prefix, checks
# what was installed (only the SDK's files; libimclient.so with soname libimclient.so.1, exporting
# the im_* functions of <im/im_client.h> and nothing else), then builds the C example
# (sdk/examples/hello.c, copied away from the source tree) against that prefix alone, once with
# pkg-config and once with find_package(ImClient), and runs both: with no arguments the example
# prints its usage and exits 2, after the loader has bound every symbol of libimclient.so.
# The library must be built first (ninja imclient).
# Usage: sdk/tests/install_test.sh BUILD_DIR
# Environment (ctest sets them from the build): CC, the build's C compiler (default cc);
# IM_SANITIZE, the build's sanitizers (a sanitized libimclient.so needs a sanitized app);
# IMCLIENT_LIBDIR, CMAKE_INSTALL_LIBDIR (default lib); CMAKE, the cmake binary.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BUILD="$1"
CC="${CC:-cc}"
CMAKE="${CMAKE:-cmake}"
LIBDIR_NAME="${IMCLIENT_LIBDIR:-lib}"
app_flags=()
if [ -n "${IM_SANITIZE:-}" ]; then
  app_flags=("-fsanitize=$IM_SANITIZE")
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/imclient-install.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
PREFIX="$WORK/prefix"
LIBDIR="$PREFIX/$LIBDIR_NAME"

fail() {
  echo "install_test: FAIL: $*" >&2
  exit 1
}

echo "install_test: cmake --install $BUILD --component sdk --prefix $PREFIX"
"$CMAKE" --install "$BUILD" --component sdk --prefix "$PREFIX" >"$WORK/install.log" ||
  { cat "$WORK/install.log" >&2; fail "cmake --install (is imclient built?)"; }

# Only the SDK's files: no server binary, static library or stray component.
(cd "$PREFIX" && find . \( -type f -o -type l \) | sed 's|^\./||' | sort) >"$WORK/files.txt"
cat "$WORK/files.txt"
while read -r file; do
  case "$file" in
    include/im/im_client.h | "$LIBDIR_NAME"/libimclient.so*) ;;
    "$LIBDIR_NAME"/pkgconfig/imclient.pc | "$LIBDIR_NAME"/cmake/ImClient/ImClient*.cmake) ;;
    *) fail "installed $file, which is not the SDK's" ;;
  esac
done <"$WORK/files.txt"
for file in include/im/im_client.h "$LIBDIR_NAME/pkgconfig/imclient.pc" \
    "$LIBDIR_NAME/cmake/ImClient/ImClientConfig.cmake" \
    "$LIBDIR_NAME/cmake/ImClient/ImClientConfigVersion.cmake"; do
  [ -f "$PREFIX/$file" ] || fail "$file not installed"
done
# The link an app's -limclient finds, to the soname, to the file.
[ "$(readlink "$LIBDIR/libimclient.so")" = libimclient.so.1 ] || fail "no link libimclient.so"
LIB="$LIBDIR/$(readlink "$LIBDIR/libimclient.so.1" || true)"
[ -f "$LIB" ] && [ ! -L "$LIB" ] || fail "libimclient.so.1 is not a link to the library"

soname="$(readelf -d "$LIB" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')"
[ "$soname" = libimclient.so.1 ] || fail "soname '$soname', not libimclient.so.1"
if readelf -d "$LIB" | grep -E '\((RUNPATH|RPATH)\)'; then
  fail "the installed library keeps a search path (above)"
fi
readelf -V "$LIB" >"$WORK/versions.txt"
grep -q 'Name: IMCLIENT_1' "$WORK/versions.txt" || fail "no version node IMCLIENT_1"

# The functions the installed header declares, as the preprocessor leaves it (no comments, no
# macros): names followed by "(", except typedefs (a callback type "(*im_x_cb)(" has no match).
printf '#include <im/im_client.h>\n' | "$CC" -E -P -I"$PREFIX/include" -x c - >"$WORK/header.i" ||
  fail "preprocessing the installed header failed"
{ grep -v '^[[:space:]]*typedef' "$WORK/header.i" || true; } |
  { grep -oE '\bim_[A-Za-z0-9_]+[[:space:]]*\(' || true; } | sed 's/[[:space:]]*($//' |
  sort -u >"$WORK/declared.txt"
[ -s "$WORK/declared.txt" ] || fail "no im_* function found in include/im/im_client.h"

# Prints the names (without version) a library defines for others, except version nodes.
exports() {
  nm -D --defined-only "$1" | awk '!($2 == "A" && $3 ~ /^IMCLIENT_/) {print $3}' |
    sed 's/@.*//' | sort -u
}
exports "$LIB" >"$WORK/exported.txt"
echo "install_test: exports: $(tr '\n' ' ' <"$WORK/exported.txt")"
foreign="$(grep -v '^im_' "$WORK/exported.txt" || true)"
[ -z "$foreign" ] || fail "exports more than im_*: $(echo "$foreign" | head -5 | tr '\n' ' ')"
missing="$(comm -13 "$WORK/exported.txt" "$WORK/declared.txt")"
[ -z "$missing" ] || fail "declared in im_client.h but not exported: $missing"
extra="$(comm -23 "$WORK/exported.txt" "$WORK/declared.txt")"
[ -z "$extra" ] || fail "exported but not declared in im_client.h: $extra"

echo "install_test: self-test: the same check sees C++ symbols in libprotobuf, which imclient loads"
protobuf="$(ldd "$LIB" | awk '$1 ~ /^libprotobuf\.so/ {print $3}')"
[ -n "$protobuf" ] || fail "libimclient.so does not load libprotobuf"
exports "$protobuf" >"$WORK/protobuf-exported.txt"
grep -v '^im_' "$WORK/protobuf-exported.txt" | grep '^_ZN6google8protobuf' >/dev/null ||
  fail "the export check saw no protobuf symbol in $protobuf"

mkdir "$WORK/app"
cp "$ROOT/sdk/examples/hello.c" "$WORK/app/hello.c"

# Runs app $1 with the environment after it, with no arguments: it must print its usage and exit 2
# with libimclient.so.1 loaded from the prefix and all its symbols bound (LD_BIND_NOW).
check_runs() {
  local app="$1" status=0
  shift
  env -u LD_LIBRARY_PATH "$@" ldd "$app" >"$WORK/ldd.txt"
  grep -q "libimclient\.so\.1 => $LIBDIR/libimclient\.so\.1 " "$WORK/ldd.txt" ||
    { cat "$WORK/ldd.txt" >&2; fail "$app does not load libimclient.so.1 from $LIBDIR"; }
  env -u LD_LIBRARY_PATH LD_BIND_NOW=1 "$@" "$app" >"$WORK/out.txt" 2>&1 || status=$?
  cat "$WORK/out.txt"
  [ "$status" -eq 2 ] || fail "$app exited $status, not 2 (usage)"
  grep -q '^usage: ' "$WORK/out.txt" || fail "$app printed no usage"
}

echo "install_test: pkg-config: $CC ${app_flags[*]} hello.c \$(pkg-config --cflags --libs imclient)"
export PKG_CONFIG_PATH="$LIBDIR/pkgconfig"
[ "$(cd "$(pkg-config --variable=prefix imclient)" && pwd -P)" = "$(cd "$PREFIX" && pwd -P)" ] ||
  fail "pkg-config prefix $(pkg-config --variable=prefix imclient) is not $PREFIX"
# shellcheck disable=SC2046 # pkg-config's flags are meant to split
"$CC" -Wall -Wextra "${app_flags[@]}" -o "$WORK/app/hello-pkg-config" "$WORK/app/hello.c" \
  $(pkg-config --cflags --libs imclient)
check_runs "$WORK/app/hello-pkg-config" LD_LIBRARY_PATH="$LIBDIR"
unset PKG_CONFIG_PATH

echo "install_test: CMake: find_package(ImClient 1 REQUIRED) with CMAKE_PREFIX_PATH=$PREFIX"
cat >"$WORK/app/CMakeLists.txt" <<'EOF'
cmake_minimum_required(VERSION 3.16)
project(imclient_app LANGUAGES C)
find_package(ImClient 1 REQUIRED)
add_executable(app hello.c)
target_link_libraries(app PRIVATE ImClient::imclient)
EOF
"$CMAKE" -S "$WORK/app" -B "$WORK/app/build" -DCMAKE_PREFIX_PATH="$PREFIX" \
  -DCMAKE_C_COMPILER="$CC" -DCMAKE_C_FLAGS="${app_flags[*]}" \
  -DCMAKE_EXE_LINKER_FLAGS="${app_flags[*]}" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF \
  -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF >"$WORK/cmake.log" 2>&1 ||
  { cat "$WORK/cmake.log" >&2; fail "configuring the CMake app"; }
found="$(sed -n 's/^ImClient_DIR:PATH=//p' "$WORK/app/build/CMakeCache.txt")"
[ "$found" = "$LIBDIR/cmake/ImClient" ] || fail "find_package found ImClient in '$found'"
"$CMAKE" --build "$WORK/app/build" >"$WORK/build.log" 2>&1 ||
  { cat "$WORK/build.log" >&2; fail "building the CMake app"; }
# CMake gives the app a RUNPATH to the prefix's lib: no LD_LIBRARY_PATH at all.
check_runs "$WORK/app/build/app"

echo "install_test: ok"
