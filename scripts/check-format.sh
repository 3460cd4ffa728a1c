#!/usr/bin/env bash
# Fails if any tracked C++ file is not formatted per .clang-format. Generated code lives in build
# directories, which git does not track, so nothing is excluded.
# Usage: scripts/check-format.sh            (CLANG_FORMAT=clang-format-14 to pick a binary)
set -euo pipefail

cd "$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
CLANG_FORMAT="${CLANG_FORMAT:-clang-format}"
if ! command -v "$CLANG_FORMAT" >/dev/null; then
  echo "check-format: $CLANG_FORMAT not found" >&2
  exit 2
fi

mapfile -d '' files < <(git ls-files -z -- '*.h' '*.cc')
if [ "${#files[@]}" -eq 0 ]; then
  echo "check-format: no files"
  exit 0
fi
"$CLANG_FORMAT" --version
"$CLANG_FORMAT" --dry-run --Werror --style=file "${files[@]}"
echo "check-format: ${#files[@]} files formatted"
