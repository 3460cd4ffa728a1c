#include "common/hmac.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstddef>
#include <limits>

namespace im::common {
namespace {

constexpr size_t kMacBytes = 32;  // SHA-256

}  // namespace

std::optional<std::string> HmacSha256(std::string_view key, std::string_view data) {
  // A default-constructed string_view has a null data(); OpenSSL reads a null key as "no key".
  static constexpr unsigned char kEmpty[1] = {0};
  if (key.size() > static_cast<size_t>(std::numeric_limits<int>::max())) return std::nullopt;
  const void* key_ptr = key.empty() ? kEmpty : static_cast<const void*>(key.data());
  const unsigned char* data_ptr =
      data.empty() ? kEmpty : reinterpret_cast<const unsigned char*>(data.data());
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  if (HMAC(EVP_sha256(), key_ptr, static_cast<int>(key.size()), data_ptr, data.size(), mac,
           &mac_len) == nullptr ||
      mac_len != kMacBytes) {
    return std::nullopt;
  }
  return std::string(reinterpret_cast<const char*>(mac), mac_len);
}

bool SameMac(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace im::common
