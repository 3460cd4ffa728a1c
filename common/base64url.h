#pragma once

#include <string>
#include <string_view>

namespace im::common {

// Unpadded base64url (RFC 4648 section 5), as tokens use it.
std::string Base64UrlEncode(std::string_view bytes);
// Returns false on characters outside the alphabet or an impossible length.
bool Base64UrlDecode(std::string_view text, std::string* out);

}  // namespace im::common
