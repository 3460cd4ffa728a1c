#include "store/redis_replies.h"

#include <openssl/evp.h>

#include "fmt/format.h"

namespace im::store {

absl::Status StatusOfErrorReply(std::string_view text) {
  // A Redis that is loading its data or is a replica being promoted answers every command with
  // one of these: it will serve again soon.
  const bool transient = text.starts_with("LOADING") || text.starts_with("BUSY") ||
                         text.starts_with("MASTERDOWN") || text.starts_with("TRYAGAIN") ||
                         IsNoScript(text);
  const std::string message = fmt::format("redis error: {}", text);
  return transient ? absl::UnavailableError(message) : absl::InternalError(message);
}

std::string ScriptSha1(std::string_view script) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(script.data(), script.size(), digest, &length, EVP_sha1(), nullptr);
  std::string hex;
  for (unsigned int i = 0; i < length; ++i) hex += fmt::format("{:02x}", digest[i]);
  return hex;
}

}  // namespace im::store
