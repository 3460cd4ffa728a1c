#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "store/message_store.h"

namespace im::store {

// What every MessageStore backend checks and decides the same way, so that the in-process store
// never accepts what MySQL would refuse. Sizes are the columns of store/migrations, in bytes.
inline constexpr size_t kMaxConvIdBytes = 140;
inline constexpr size_t kMaxUidBytes = 64;  // uid, sender
inline constexpr size_t kMaxClientMsgIdBytes = 64;
inline constexpr size_t kMaxBodyBytes = (size_t{1} << 24) - 1;  // MEDIUMBLOB
// Unread counts stop here: counting is a range scan over the conversation's messages, and a client
// shows "99+" long before.
inline constexpr uint64_t kMaxUnreadCount = 100'000;

absl::Status CheckConvId(std::string_view conv_id);
absl::Status CheckUid(std::string_view uid);
// A uid that names a member of a conversation or group: CheckUid, and not empty.
absl::Status CheckMemberUid(std::string_view uid);
// JoinConversation's and LeaveConversation's arguments: a member uid and a non-empty conv_id.
absl::Status CheckMembership(std::string_view uid, std::string_view conv_id);
absl::Status CheckLimit(uint32_t limit);
// A ConversationPeers query: uid and every candidate CheckMemberUid.
absl::Status CheckPeerQuery(std::string_view uid, const std::vector<std::string>& candidates);
// AdvanceDelivered's arguments: the uid and every cursor's conversation id.
absl::Status CheckCursors(std::string_view uid, const std::vector<Cursor>& cursors);
// Everything Append checks before it writes anything: a bad message fails the whole batch.
absl::Status CheckBatch(const std::vector<NewMessage>& batch);

// RECALL and EDIT: messages that change an earlier one (Message.ref_seq) rather than say something.
// They count neither as unread nor as a conversation's last message; the SQL of the backends
// names them by value ("type NOT IN (6, 7)").
static_assert(im::v1::RECALL == 6 && im::v1::EDIT == 7, "the stores' SQL names changes by value");
inline bool IsChange(int type) { return type == im::v1::RECALL || type == im::v1::EDIT; }
// NOT_FOUND for a user without a row in a conversation (AdvanceRead, ReadCursor).
absl::Status NoConversationRow(std::string_view uid, std::string_view conv_id);
// ApplyChange's argument: a RECALL or EDIT with its conversation, seq and ref_seq set, the
// referenced seq below its own.
absl::Status CheckChange(const im::v1::Message& change);

// (sender, client_msg_id), the key Append deduplicates on; nullopt when the sender gave no
// client_msg_id: such a message is never a duplicate of another.
std::optional<std::pair<std::string_view, std::string_view>> IdentityOf(
    const im::v1::Message& message);

// For each message of `batch`, the index of the first message of the batch with the same identity
// (its own index when it is the first or has no identity). A later copy is not written; it gets
// the first one's outcome.
std::vector<size_t> FirstOccurrences(const std::vector<NewMessage>& batch);

}  // namespace im::store
