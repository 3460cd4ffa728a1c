#pragma once

#include <optional>

#include "im/v1/client.pb.h"

namespace im::bench {

// Which of a device's acknowledged messages it changes (--recall-share, --edit-share): each
// message adds its share to a credit per kind, and a kind whose credit reached one is spent on
// the message. The edit credit starts at one half, so that equal shares take turns instead of
// falling on the same messages. The picks are spread evenly and the same on every run: of n
// messages, floor(n x recall share) are recalled and round(n x edit share) edited, but for an
// edit due on a message that is recalled, which goes to the next one. The shares must add up to
// at most 1 (BenchOptions::Resolve). One per device; not thread-safe.
class ChangePicker {
 public:
  ChangePicker() = default;
  ChangePicker(double recall_share, double edit_share)
      : recall_share_(recall_share), edit_share_(edit_share) {}

  // For the next acknowledged message: RECALL, EDIT, or nullopt (left as it is).
  std::optional<im::v1::MessageType> Next();

 private:
  double recall_share_ = 0;
  double edit_share_ = 0;
  double recall_credit_ = 0;
  double edit_credit_ = 0.5;
};

}  // namespace im::bench
