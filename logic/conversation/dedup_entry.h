#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "im/v1/client.pb.h"

namespace im::logic {

// A send's dedup entry (the TtlMap's im:dedup namespace): keyed by sender and client_msg_id,
// holding kPendingSend while an attempt is being stored, then the stored message's coordinates.

// The entry of a send being stored; replaced by EncodeDedup's text once it is stored.
inline constexpr char kPendingSend[] = "pending";

// "<sender>:<client_msg_id>" (uids never hold ':').
std::string DedupKey(std::string_view sender, std::string_view client_msg_id);
// The sender and client_msg_id of a DedupKey; nullopt for anything else.
struct SentBy {
  std::string_view sender;
  std::string_view client_msg_id;
};
std::optional<SentBy> ParseDedupKey(std::string_view key);

// "<conv_id>|<seq>|<msg_id>|<created_ms>" of a stored message (conv ids never hold '|').
std::string EncodeDedup(const im::v1::Message& message);
// The answer an attempt gets for a send stored before; nullopt when `text` is not EncodeDedup's.
std::optional<im::v1::SendResp> DecodeDedup(std::string_view text);

}  // namespace im::logic
