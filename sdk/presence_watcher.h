#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "sdk/types.h"

namespace im::sdk {

// The users this device watches (Client::WatchPresence) and when to tell the server again. The
// server keeps a device's list only for the ttl it answered, and a login may follow a gap longer
// than that, so the list goes out when the app changes it, after every login, and every half ttl.
// One request at a time: two lists on the wire could be applied in either order, so a list the app
// gives while one is on the wire waits for its answer, and a list not sent yet is replaced by the
// next one. It also decides which states the app hears of (OnPresence): all of them in the first
// answer to a new list, then the pushed ones that changed, and in the first answer after a login
// those that changed while the device was away. Presence has no version, so an answer cannot be
// ordered against the pushes around it: a renewal's answer on a live connection reports nothing.
// Pure (the caller passes the time and does the I/O). Loop thread only.
class PresenceWatcher {
 public:
  struct Request {
    uint64_t generation = 0;  // of the list it carries (Watch's return value)
    std::vector<std::string> uids;
  };

  // The app's new list, in force from now on (empty: stop watching); returns its generation,
  // which grows with every call.
  uint64_t Watch(std::vector<std::string> uids);
  // A new session: the list is due at once. A stop already answered is not repeated (the old
  // session's watch ended with it or ends at its ttl).
  void OnLoggedIn();
  // The request to write now, when one is due and none is on the wire; it is on the wire from
  // now until OnAnswered or OnFailed.
  std::optional<Request> TakeDue(int64_t now_ms);
  // The server accepted the request on the wire. When its list is still the current one, the
  // next renewal is due at half the ttl (ttl 0: the watch does not expire, no renewal). Returns
  // the states to report: every one in the first answer to a list; in the first answer of a
  // session, those that differ from the last reported; none otherwise.
  std::vector<Presence> OnAnswered(const std::vector<Presence>& presences, uint32_t ttl_sec,
                                   int64_t now_ms);
  // The request on the wire was not answered or was refused. `retry`: send it again at
  // `retry_at_ms` (a transient failure); false: not before the next login. A list given since
  // then is due at once either way.
  void OnFailed(bool retry, int64_t retry_at_ms);
  // States pushed by the server; returns those to report: of watched users, and changed.
  std::vector<Presence> OnPush(const std::vector<Presence>& presences);

  const std::vector<std::string>& uids() const { return uids_; }
  // The generation of the request on the wire; 0: none.
  uint64_t on_wire_generation() const { return on_wire_generation_; }

 private:
  // Of `presences`, those to report (watched, and changed unless `all`); remembers them.
  std::vector<Presence> Report(const std::vector<Presence>& presences, bool all);

  std::vector<std::string> uids_;
  std::set<std::string> watched_;  // uids_ as a set
  uint64_t generation_ = 0;
  uint64_t answered_generation_ = 0;  // the last generation the server accepted
  bool answered_in_session_ = false;  // since the last login
  uint64_t on_wire_generation_ = 0;
  std::optional<int64_t> send_at_ms_;  // when the list is due; nullopt: nothing to send
  std::map<std::string, Presence> reported_;
};

}  // namespace im::sdk
