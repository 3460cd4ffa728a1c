#include "logic/conversation/conversation_id.h"

#include "absl/strings/str_cat.h"
#include "store/group_rules.h"

namespace im::logic {

bool IsValidUid(std::string_view uid) {
  if (uid.empty() || uid.size() > ConversationId::kMaxUidBytes) return false;
  for (char c : uid) {
    if (c <= ' ' || c > '~' || c == ':' || c == '|') return false;
  }
  return true;
}

std::optional<ConversationId> ConversationId::Single(std::string_view a, std::string_view b) {
  if (!IsValidUid(a) || !IsValidUid(b) || a == b) return std::nullopt;
  ConversationId id;
  id.kind = Kind::kSingle;
  id.first_uid = std::string(a < b ? a : b);
  id.second_uid = std::string(a < b ? b : a);
  return id;
}

std::optional<ConversationId> ConversationId::Parse(std::string_view text) {
  if (text.starts_with("s:")) {
    const std::string_view rest = text.substr(2);
    const size_t colon = rest.find(':');
    if (colon == std::string_view::npos) return std::nullopt;
    const std::string_view first = rest.substr(0, colon);
    const std::string_view second = rest.substr(colon + 1);
    if (!(first < second)) return std::nullopt;  // one spelling per conversation
    return Single(first, second);
  }
  if (text.starts_with("g:")) {
    const std::string_view group = text.substr(2);
    if (!store::CheckGroupId(group).ok()) return std::nullopt;
    ConversationId id;
    id.kind = Kind::kGroup;
    id.group_id = std::string(group);
    return id;
  }
  return std::nullopt;
}

std::string ConversationId::ToString() const {
  if (kind == Kind::kGroup) return absl::StrCat("g:", group_id);
  return absl::StrCat("s:", first_uid, ":", second_uid);
}

}  // namespace im::logic
