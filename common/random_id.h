#pragma once

#include <string>

namespace im::common {

// 128 random bits as 32 hex digits: unique without coordination, and unguessable enough for a
// client_msg_id or a token id. Any thread (each has its own generator).
std::string RandomHexId();

}  // namespace im::common
