#pragma once

#include <map>
#include <string>
#include <vector>

#include "sdk/state_store.h"

namespace im::sdk {

// The default store: state lives as long as the Client (reconnects resume; an app restart starts
// from the server's delivered cursors and loses unsent messages).
class InMemoryStateStore : public StateStore {
 public:
  absl::Status Load(const std::string& uid, std::map<std::string, uint64_t>* cursors,
                    std::vector<PendingSend>* outbox) override;
  absl::Status SaveCursors(const std::string& uid,
                           const std::map<std::string, uint64_t>& cursors) override;
  absl::Status AddPending(const std::string& uid, const PendingSend& send) override;
  absl::Status RemovePending(const std::string& uid, const std::string& client_msg_id) override;

 private:
  struct Account {
    std::map<std::string, uint64_t> cursors;
    std::vector<PendingSend> outbox;  // in the order added
  };
  std::map<std::string, Account> accounts_;
};

}  // namespace im::sdk
