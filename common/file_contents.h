#pragma once

#include <fstream>
#include <iterator>
#include <optional>
#include <string>

namespace im::common {

// The whole of a file (binary), or nullopt when it cannot be opened. For small files read at
// start-up: certificates, keys.
inline std::optional<std::string> ReadFileContents(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return std::nullopt;
  return std::string((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
}

}  // namespace im::common
