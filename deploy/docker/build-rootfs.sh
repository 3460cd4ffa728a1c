#!/usr/bin/env bash
# Builds the runtime image's file tree without Docker and checks the binaries against it.
#
# From the package list the Dockerfile's final stage installs (deploy/docker/runtime-packages.txt)
# it asks apt what an install onto an empty system would bring (the packages and all their
# dependencies), downloads those .debs from Debian's archive (`apt-get download`, cached), unpacks
# them into OUT (`dpkg-deb -x`), copies the binaries to OUT/usr/local/bin, and then checks, for
# each binary, with the tree's own dynamic loader and library path and never the host's:
#   - every shared library it needs resolves to a file inside OUT (a missing runtime package shows
#     as "libfoo.so.N is not in the image");
#   - it starts: `--help` runs under the tree's loader and C library (catches symbol versions the
#     tree's libraries lack);
#   - every package of the list provides a library some binary loads (the list stays minimal).
# Exit status: 0 when all holds, 1 with every problem named on stderr, 2 on bad usage.
#
# Usage: deploy/docker/build-rootfs.sh [--out DIR] [--packages FILE] [--extra-packages "P..."]
#                                      BINARY...
#   --out DIR              the tree (emptied first)     [build/rootfs]
#   --packages FILE        the package list             [deploy/docker/runtime-packages.txt]
#   --extra-packages "P"   more packages, not checked for use (tests: the sanitizer runtimes of
#                          an ASan build)
# Environment: IM_ROOTFS_CACHE, where the .debs are kept [<repo>/.cache/rootfs-debs]
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
OUT="$ROOT/build/rootfs"
PACKAGES_FILE="$ROOT/deploy/docker/runtime-packages.txt"
EXTRA=""
CACHE="${IM_ROOTFS_CACHE:-$ROOT/.cache/rootfs-debs}"

log() { printf 'build-rootfs: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
usage() { sed -n '/^# Usage:/,/^# Environment/p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

binaries=()
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT="$2"; shift 2 ;;
    --packages) PACKAGES_FILE="$2"; shift 2 ;;
    --extra-packages) EXTRA="$2"; shift 2 ;;
    -h|--help) usage ;;
    -*) log "unknown option $1"; usage ;;
    *) binaries+=("$1"); shift ;;
  esac
done
[ ${#binaries[@]} -gt 0 ] || { log "no binaries given"; usage; }
for binary in "${binaries[@]}"; do
  [ -f "$binary" ] && [ -x "$binary" ] || die "$binary is not an executable file"
done
[ -f "$PACKAGES_FILE" ] || die "no package list at $PACKAGES_FILE"
for tool in apt-get dpkg-deb readelf; do
  command -v "$tool" >/dev/null || die "$tool not found (Debian: apt, dpkg, binutils)"
done

mapfile -t listed < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' "$PACKAGES_FILE" | grep -v '^$')
[ ${#listed[@]} -gt 0 ] || die "$PACKAGES_FILE lists no packages"
# shellcheck disable=SC2206  # a space-separated list on purpose
extra=($EXTRA)

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

mkdir -p "$CACHE"
# The plan (which .deb files, of which versions) depends only on the list and on apt's package
# lists; computing it takes apt several seconds, so it is kept beside the .debs.
plan_key="$(
  cat "$PACKAGES_FILE"
  echo "extra: ${extra[*]}"
  ls -l --time-style=+%s /var/lib/apt/lists/ 2>/dev/null
)"
PLAN="$CACHE/plan-$(sha256sum <<<"$plan_key" | cut -c1-16)"

make_plan() {
  # What `apt-get install --no-install-recommends` would unpack on a system with nothing
  # installed: simulated against an empty dpkg status, so that the host's installed packages hide
  # no dependency (it needs Debian's package lists: apt-get update).
  : >"$work/empty-status"
  simulate() {
    apt-get -s -q -o Dir::State::status="$work/empty-status" -o APT::Install-Recommends=false \
      install "${listed[@]}" "${extra[@]}" 2>"$work/apt.err"
  }
  local simulation
  if ! simulation="$(simulate)"; then
    if grep -q "Unable to locate package" "$work/apt.err" && [ "$(id -u)" -eq 0 ]; then
      log "apt has no package lists yet: apt-get update"
      apt-get update -q >&2
      simulation="$(simulate)" || die "apt cannot resolve the packages: $(cat "$work/apt.err")"
    else
      die "apt cannot resolve the packages: $(cat "$work/apt.err")"
    fi
  fi
  # "Inst libuv1 (1.44.2-1+deb12u1 Debian:12.11/stable [amd64])" -> libuv1=1.44.2-1+deb12u1
  local pinned
  mapfile -t pinned < <(sed -n 's/^Inst \([^ ]*\) (\([^ ]*\) .*/\1=\2/p' <<<"$simulation")
  [ ${#pinned[@]} -gt 0 ] || die "apt planned no packages for: ${listed[*]}"
  # apt's file name for each (epochs as %3a): "<file> <package>=<version>" per line.
  apt-get download --print-uris "${pinned[@]}" 2>"$work/apt.err" | awk '{print $2}' |
    while read -r deb; do
      for spec in "${pinned[@]}"; do
        if [ "${spec%%=*}" = "${deb%%_*}" ]; then echo "$deb $spec"; fi
      done
    done >"$work/plan" || die "apt-get download --print-uris: $(cat "$work/apt.err")"
  [ "$(wc -l <"$work/plan")" -eq ${#pinned[@]} ] ||
    die "apt names $(wc -l <"$work/plan") files for ${#pinned[@]} packages: $(cat "$work/apt.err")"
  mv "$work/plan" "$PLAN"
}
[ -s "$PLAN" ] || make_plan

# Download what the cache lacks.
missing=()
while read -r deb spec; do
  [ -s "$CACHE/$deb" ] || missing+=("$spec")
done <"$PLAN"
if [ ${#missing[@]} -gt 0 ]; then
  log "downloading ${#missing[@]} of $(wc -l <"$PLAN") packages into $CACHE"
  # Into a directory of its own, so that a failed download leaves no partial file in the cache;
  # run as root, apt-get download drops to the _apt user, who must be able to write there.
  mkdir -p "$work/download"
  chmod 777 "$work/download"
  (cd "$work/download" && apt-get download -q "${missing[@]}" 2>"$work/apt.err" >&2) ||
    die "apt-get download failed: $(cat "$work/apt.err")"
  mv "$work/download"/*.deb "$CACHE"/
fi

rm -rf "$OUT"
mkdir -p "$OUT"
# The files of each package, to name who provides a library.
mkdir -p "$work/contents"
while read -r deb _; do
  [ -s "$CACHE/$deb" ] || die "$deb is not in $CACHE after downloading"
  dpkg-deb -x "$CACHE/$deb" "$OUT" || die "dpkg-deb -x $deb failed"
  dpkg-deb -c "$CACHE/$deb" | awk '{print $6}' | sed 's|^\./|/|' >"$work/contents/${deb%%_*}"
done <"$PLAN"
mkdir -p "$OUT/usr/local/bin"
for binary in "${binaries[@]}"; do
  # A hard link when the tree is on the binary's file system: a sanitizer build's binaries are
  # hundreds of megabytes.
  ln -f "$binary" "$OUT/usr/local/bin/" 2>/dev/null || cp "$binary" "$OUT/usr/local/bin/"
done

# Follows symlinks the way the image would see them: an absolute target is inside OUT, not on the
# host. Prints the path inside OUT, or nothing when the chain ends at a missing file.
resolve_in_tree() {
  local path="$1" hops=0 target
  while [ -L "$OUT$path" ]; do
    target="$(readlink "$OUT$path")"
    case "$target" in
      /*) path="$target" ;;
      *) path="$(dirname "$path")/$target" ;;
    esac
    hops=$((hops + 1))
    [ $hops -le 40 ] || return 0
  done
  [ -e "$OUT$path" ] && printf '%s\n' "$path"
}

# The library path of the image: ld.so.conf.d entries (libc6 ships the multiarch ones) and the
# loader's built-in /lib and /usr/lib, all inside OUT.
search=()
for conf in "$OUT"/etc/ld.so.conf.d/*.conf; do
  [ -f "$conf" ] || continue
  while read -r dir; do
    [ -n "$dir" ] && search+=("$OUT$dir")
  done < <(sed -e 's/#.*//' -e '/^include/d' "$conf")
done
search+=("$OUT/lib" "$OUT/usr/lib")
library_path="$(IFS=:; echo "${search[*]}")"

problems=0
problem() { log "$*"; problems=$((problems + 1)); }
: >"$work/used"
for binary in "${binaries[@]}"; do
  name="$(basename "$binary")"
  interp="$(readelf -l "$binary" | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')"
  [ -n "$interp" ] || { problem "$name: no program interpreter (a static binary?)"; continue; }
  loader="$(resolve_in_tree "$interp")"
  [ -n "$loader" ] || { problem "$name: its loader $interp is not in the image"; continue; }
  # --inhibit-cache: the host's /etc/ld.so.cache must not answer for the image.
  if ! listing="$("$OUT$loader" --inhibit-cache --library-path "$library_path" --list \
      "$OUT/usr/local/bin/$name" 2>&1)"; then
    problem "$name: the image's loader cannot load it:"
    sed 's/^/    /' <<<"$listing" >&2
  fi
  while read -r line; do
    case "$line" in
      *"=> not found"*)
        problem "$name: ${line%% *} is not in the image (nor on this host; add its package" \
          "to $PACKAGES_FILE)" ;;
      *" => "*)
        soname="${line%% *}"
        path="$(sed 's/.* => \(.*\) (0x.*/\1/' <<<"$line")"
        case "$path" in
          "$OUT"/*)
            inside="$(resolve_in_tree "${path#"$OUT"}")"
            if [ -z "$inside" ]; then
              problem "$name: $soname resolves to ${path#"$OUT"}, a dangling link in the image"
            else
              printf '%s\n%s\n' "${path#"$OUT"}" "$inside" >>"$work/used"
            fi ;;
          *) problem "$name: $soname is not in the image (only the host has it, at $path;" \
               "add its package to $PACKAGES_FILE)" ;;
        esac ;;
      *"version "*"not found"*) problem "$name: $line" ;;
    esac
  done <<<"$listing"
  if ! output="$(env -i "$OUT$loader" --inhibit-cache --library-path "$library_path" \
      "$OUT/usr/local/bin/$name" --help 2>&1)"; then
    problem "$name: does not start in the image (--help failed):"
    head -20 <<<"$output" | sed 's/^/    /' >&2
  fi
done

# Each listed package must provide at least one library a binary loads.
for package in "${listed[@]}"; do
  contents="$work/contents/$package"
  [ -f "$contents" ] || { problem "$package: listed but apt unpacked no such package"; continue; }
  if ! grep -qxFf "$work/used" "$contents"; then
    problem "$package: listed in $PACKAGES_FILE but no binary loads a library from it (remove it)"
  fi
done

if [ $problems -gt 0 ]; then
  die "$problems problem(s) with the runtime tree in $OUT (above)"
fi
log "ok: ${binaries[*]##*/} resolve every library inside $OUT ($(wc -l <"$PLAN") packages," \
  "$(du -sh "$OUT" | cut -f1))"
