#pragma once

#include <charconv>
#include <string_view>
#include <system_error>

namespace im::common {

// Parses the whole of `text` as a decimal integer; false (and *value unspecified) for anything
// else: empty, a sign where Int has none, trailing characters, out of range.
template <typename Int>
bool ParseInt(std::string_view text, Int* value) {
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), *value);
  return error == std::errc() && end == text.data() + text.size() && !text.empty();
}

}  // namespace im::common
