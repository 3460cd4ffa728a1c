#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace im::logic {

// A conversation as its id names it (DESIGN.md section 5): "s:<min uid>:<max uid>" for the single
// chat of two distinct users, "g:<group id>" for a group (1-64 bytes of [A-Za-z0-9_-]).
struct ConversationId {
  enum class Kind { kSingle, kGroup };
  Kind kind = Kind::kSingle;
  std::string first_uid;   // single chat: the smaller uid
  std::string second_uid;  // single chat: the larger uid
  std::string group_id;    // group

  static constexpr size_t kMaxUidBytes = 64;

  // Nullopt when `text` is not a well-formed id: wrong prefix, empty or over-long parts, uids out
  // of order or equal, or characters a uid may not hold.
  static std::optional<ConversationId> Parse(std::string_view text);
  // The single chat of `a` and `b`; nullopt when either uid is invalid or they are equal.
  static std::optional<ConversationId> Single(std::string_view a, std::string_view b);

  std::string ToString() const;
  bool Includes(std::string_view uid) const {
    return kind == Kind::kSingle && (uid == first_uid || uid == second_uid);
  }
  // Single chat: the other participant of `uid`.
  const std::string& PeerOf(std::string_view uid) const {
    return uid == first_uid ? second_uid : first_uid;
  }
};

// A uid is 1..64 bytes of printable ASCII other than ':' and '|' (separators in our keys).
bool IsValidUid(std::string_view uid);

// The sender of what the system (the admin API, group notices) says: a uid no user may log in
// as. Its single chats with users are s:@system:<uid>.
inline constexpr char kSystemUid[] = "@system";

}  // namespace im::logic
