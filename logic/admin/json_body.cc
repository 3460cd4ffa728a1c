#include "logic/admin/json_body.h"

#include "absl/strings/str_cat.h"
#include "logic/conversation/conversation_id.h"
#include "store/group_rules.h"

namespace im::logic {

JsonBody::JsonBody(std::string_view text, bool optional, std::set<std::string_view> fields) {
  if (text.empty() && optional) {
    json_ = nlohmann::json::object();
    return;
  }
  json_ = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json_.is_discarded()) {
    Fail("the body is not JSON");
  } else if (!json_.is_object()) {
    Fail("the body must be a JSON object");
  } else {
    for (const auto& item : json_.items()) {
      if (fields.contains(item.key())) continue;
      Fail(absl::StrCat("unknown field \"", item.key(), "\""));
      break;
    }
  }
}

void JsonBody::Fail(std::string reason) {
  if (status_.ok()) status_ = absl::InvalidArgumentError(std::move(reason));
}

const nlohmann::json* JsonBody::Field(const char* name) {
  if (!ok()) return nullptr;
  const auto found = json_.find(name);
  return found == json_.end() ? nullptr : &*found;
}

std::optional<std::string> JsonBody::String(const char* name, size_t min_bytes, size_t max_bytes) {
  const nlohmann::json* field = Field(name);
  if (field == nullptr) return std::nullopt;
  if (!field->is_string()) {
    Fail(absl::StrCat(name, " must be a string"));
    return std::nullopt;
  }
  std::string value = field->get<std::string>();
  if (value.size() < min_bytes || value.size() > max_bytes) {
    Fail(absl::StrCat(name, " must be ", min_bytes, "-", max_bytes, " bytes"));
    return std::nullopt;
  }
  return value;
}

std::optional<std::string> JsonBody::Uid(const char* name) {
  std::optional<std::string> value = String(name, 1, ConversationId::kMaxUidBytes);
  if (value && !IsValidUid(*value)) {
    Fail(absl::StrCat(name, " must be 1-64 printable ASCII bytes without space, ':' or '|'"));
    return std::nullopt;
  }
  return value;
}

std::optional<std::string> JsonBody::GroupId(const char* name) {
  std::optional<std::string> value = String(name, 1, store::kMaxGroupIdBytes);
  if (value && !store::CheckGroupId(*value).ok()) {
    Fail(absl::StrCat(name, " must be 1-64 bytes of [A-Za-z0-9_-]"));
    return std::nullopt;
  }
  return value;
}

std::optional<int64_t> JsonBody::Integer(const char* name, int64_t min, int64_t max) {
  const nlohmann::json* field = Field(name);
  if (field == nullptr) return std::nullopt;
  const bool in_range =
      field->is_number_integer() &&
      (field->is_number_unsigned() ? field->get<uint64_t>() <= static_cast<uint64_t>(max) &&
                                         static_cast<int64_t>(field->get<uint64_t>()) >= min
                                   : field->get<int64_t>() >= min && field->get<int64_t>() <= max);
  if (!in_range) {
    Fail(absl::StrCat(name, " must be an integer from ", min, " to ", max));
    return std::nullopt;
  }
  return field->is_number_unsigned() ? static_cast<int64_t>(field->get<uint64_t>())
                                     : field->get<int64_t>();
}

std::optional<std::vector<std::string>> JsonBody::Uids(const char* name, size_t min_items,
                                                       size_t max_items) {
  const nlohmann::json* field = Field(name);
  if (field == nullptr) return std::nullopt;
  if (!field->is_array() || field->size() < min_items || field->size() > max_items) {
    Fail(absl::StrCat(name, " must be an array of ", min_items, "-", max_items, " uids"));
    return std::nullopt;
  }
  std::vector<std::string> uids;
  uids.reserve(field->size());
  for (const nlohmann::json& item : *field) {
    if (!item.is_string() || !IsValidUid(item.get_ref<const std::string&>())) {
      Fail(absl::StrCat(name, " must hold uids: printable ASCII without space, ':' or '|'"));
      return std::nullopt;
    }
    uids.push_back(item.get<std::string>());
  }
  return uids;
}

}  // namespace im::logic
