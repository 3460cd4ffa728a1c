#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace im::common {

// HMAC-SHA256 of `data` under `key` (32 bytes); nullopt only if OpenSSL itself fails (allocation,
// or a FIPS provider refusing a short key).
std::optional<std::string> HmacSha256(std::string_view key, std::string_view data);

// Whether two MACs are equal, in time that does not depend on where they differ.
bool SameMac(std::string_view a, std::string_view b);

}  // namespace im::common
