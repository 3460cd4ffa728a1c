#include "bench/change_picker.h"

namespace im::bench {
namespace {

// Ten shares of 0.1 add up to a little less than 1 in binary floating point.
constexpr double kWhole = 1 - 1e-9;

}  // namespace

std::optional<im::v1::MessageType> ChangePicker::Next() {
  recall_credit_ += recall_share_;
  edit_credit_ += edit_share_;
  if (recall_credit_ >= kWhole) {
    recall_credit_ -= 1;
    return im::v1::RECALL;
  }
  if (edit_credit_ >= kWhole) {
    edit_credit_ -= 1;
    return im::v1::EDIT;
  }
  return std::nullopt;
}

}  // namespace im::bench
