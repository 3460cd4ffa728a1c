#include "sdk/in_memory_state_store.h"

#include <algorithm>

namespace im::sdk {

absl::Status InMemoryStateStore::Load(const std::string& uid,
                                      std::map<std::string, uint64_t>* cursors,
                                      std::vector<PendingSend>* outbox) {
  const Account& account = accounts_[uid];
  *cursors = account.cursors;
  *outbox = account.outbox;
  return absl::OkStatus();
}

absl::Status InMemoryStateStore::SaveCursors(const std::string& uid,
                                             const std::map<std::string, uint64_t>& cursors) {
  std::map<std::string, uint64_t>& stored = accounts_[uid].cursors;
  for (const auto& [conv_id, seq] : cursors) stored[conv_id] = std::max(stored[conv_id], seq);
  return absl::OkStatus();
}

absl::Status InMemoryStateStore::AddPending(const std::string& uid, const PendingSend& send) {
  std::vector<PendingSend>& outbox = accounts_[uid].outbox;
  const bool known = std::any_of(outbox.begin(), outbox.end(), [&](const PendingSend& pending) {
    return pending.client_msg_id == send.client_msg_id;
  });
  if (known) return absl::AlreadyExistsError("client_msg_id already in the outbox");
  outbox.push_back(send);
  return absl::OkStatus();
}

absl::Status InMemoryStateStore::RemovePending(const std::string& uid,
                                               const std::string& client_msg_id) {
  std::vector<PendingSend>& outbox = accounts_[uid].outbox;
  outbox.erase(std::remove_if(outbox.begin(), outbox.end(),
                              [&](const PendingSend& pending) {
                                return pending.client_msg_id == client_msg_id;
                              }),
               outbox.end());
  return absl::OkStatus();
}

}  // namespace im::sdk
