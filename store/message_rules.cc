#include "store/message_rules.h"

#include <map>

#include "common/status_macros.h"
#include "fmt/format.h"

namespace im::store {
namespace {

absl::Status CheckLength(std::string_view what, std::string_view value, size_t max_bytes) {
  if (value.size() <= max_bytes) return absl::OkStatus();
  return absl::InvalidArgumentError(
      fmt::format("{} is {} bytes, at most {} fit", what, value.size(), max_bytes));
}

}  // namespace

absl::Status CheckConvId(std::string_view conv_id) {
  return CheckLength("conv_id", conv_id, kMaxConvIdBytes);
}

absl::Status CheckUid(std::string_view uid) { return CheckLength("uid", uid, kMaxUidBytes); }

absl::Status CheckMemberUid(std::string_view uid) {
  return uid.empty() ? absl::InvalidArgumentError("empty uid") : CheckUid(uid);
}

absl::Status CheckMembership(std::string_view uid, std::string_view conv_id) {
  if (absl::Status status = CheckMemberUid(uid); !status.ok()) return status;
  return conv_id.empty() ? absl::InvalidArgumentError("empty conv_id") : CheckConvId(conv_id);
}

absl::Status CheckLimit(uint32_t limit) {
  return limit >= 1 ? absl::OkStatus() : absl::InvalidArgumentError("limit must be at least 1");
}

absl::Status CheckPeerQuery(std::string_view uid, const std::vector<std::string>& candidates) {
  IM_RETURN_IF_ERROR(CheckMemberUid(uid));
  for (const std::string& candidate : candidates) IM_RETURN_IF_ERROR(CheckMemberUid(candidate));
  return absl::OkStatus();
}

absl::Status CheckCursors(std::string_view uid, const std::vector<Cursor>& cursors) {
  if (absl::Status status = CheckUid(uid); !status.ok()) return status;
  for (const Cursor& cursor : cursors) {
    if (absl::Status status = CheckConvId(cursor.conv_id); !status.ok()) return status;
  }
  return absl::OkStatus();
}

absl::Status CheckBatch(const std::vector<NewMessage>& batch) {
  for (const NewMessage& entry : batch) {
    const im::v1::Message& m = entry.message;
    if (m.conv_id().empty()) return absl::InvalidArgumentError("message without conv_id");
    if (m.seq() == 0) {
      return absl::InvalidArgumentError(fmt::format("message in {} without seq", m.conv_id()));
    }
    absl::Status status = CheckConvId(m.conv_id());
    if (status.ok()) status = CheckLength("sender", m.sender(), kMaxUidBytes);
    if (status.ok()) status = CheckLength("client_msg_id", m.client_msg_id(), kMaxClientMsgIdBytes);
    if (status.ok()) status = CheckLength("body", m.body(), kMaxBodyBytes);
    for (size_t i = 0; status.ok() && i < entry.participants.size(); ++i) {
      status = CheckMemberUid(entry.participants[i]);
    }
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

absl::Status NoConversationRow(std::string_view uid, std::string_view conv_id) {
  return absl::NotFoundError(fmt::format("{} has no conversation {}", uid, conv_id));
}

absl::Status CheckChange(const im::v1::Message& change) {
  if (absl::Status status = CheckConvId(change.conv_id()); !status.ok()) return status;
  if (!IsChange(change.type())) {
    return absl::InvalidArgumentError("a change is a RECALL or an EDIT message");
  }
  if (change.ref_seq() == 0 || change.ref_seq() >= change.seq()) {
    return absl::InvalidArgumentError(fmt::format(
        "a change (seq {}) refers to an earlier seq, not {}", change.seq(), change.ref_seq()));
  }
  return CheckLength("body", change.body(), kMaxBodyBytes);
}

std::optional<std::pair<std::string_view, std::string_view>> IdentityOf(
    const im::v1::Message& message) {
  if (message.client_msg_id().empty()) return std::nullopt;
  return std::pair<std::string_view, std::string_view>(message.sender(), message.client_msg_id());
}

std::vector<size_t> FirstOccurrences(const std::vector<NewMessage>& batch) {
  std::vector<size_t> first(batch.size());
  std::map<std::pair<std::string_view, std::string_view>, size_t> seen;
  for (size_t i = 0; i < batch.size(); ++i) {
    const auto identity = IdentityOf(batch[i].message);
    first[i] = identity ? seen.emplace(*identity, i).first->second : i;
  }
  return first;
}

}  // namespace im::store
