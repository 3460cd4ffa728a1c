#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"
#include "store/mysql_connection.h"

namespace im::store {

// How the MySQL backends write and look up many rows per statement: a statement carries at most
// kMaxRowsPerStatement rows (a power of two, see PaddedRows) and about kMaxBytesPerStatement bytes,
// well under the server's max_allowed_packet (16 MiB by default).
inline constexpr size_t kMaxRowsPerStatement = 256;
inline constexpr size_t kMaxBytesPerStatement = size_t{4} << 20;

// Multi-row statements are padded to a power of two rows by repeating the last row, which every
// statement that uses this treats as a no-op (a duplicate key, a repeated IN value), so that a
// connection prepares each statement in at most log2(kMaxRowsPerStatement) + 1 shapes instead of
// one per batch size.
inline size_t PaddedRows(size_t rows) { return std::bit_ceil(std::max<size_t>(rows, 1)); }

// `item` `count` times, with `separator` between them: the placeholders of a multi-row statement.
inline std::string Repeat(std::string_view item, size_t count, std::string_view separator) {
  std::string out;
  out.reserve(count * (item.size() + separator.size()));
  for (size_t i = 0; i < count; ++i) {
    if (i > 0) out += separator;
    out += item;
  }
  return out;
}

// Splits [0, count) into ranges [begin, end) of at most `max_rows` items and, unless a single item
// is larger, at most kMaxBytesPerStatement bytes.
inline std::vector<std::pair<size_t, size_t>> Chunks(
    size_t count, size_t max_rows,
    absl::FunctionRef<size_t(size_t)> bytes_of = [](size_t) { return size_t{0}; }) {
  std::vector<std::pair<size_t, size_t>> chunks;
  size_t begin = 0;
  size_t bytes = 0;
  for (size_t i = 0; i < count; ++i) {
    const size_t item_bytes = bytes_of(i);
    if (i > begin && (i - begin == max_rows || bytes + item_bytes > kMaxBytesPerStatement)) {
      chunks.emplace_back(begin, i);
      begin = i;
      bytes = 0;
    }
    bytes += item_bytes;
  }
  if (count > begin) chunks.emplace_back(begin, count);
  return chunks;
}

// Binds items [begin, end) with `bind`, then the last item again for each padding row (`padding`
// tells them apart). Throws like the connector.
inline void BindRows(MySqlParams& params, size_t begin, size_t end,
                     absl::FunctionRef<void(MySqlParams&, size_t item, bool padding)> bind) {
  const size_t rows = PaddedRows(end - begin);
  for (size_t r = 0; r < rows; ++r) bind(params, std::min(begin + r, end - 1), begin + r >= end);
}

}  // namespace im::store
