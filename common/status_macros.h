#pragma once

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

// Early returns on errors, so that a function reads as its steps:
//   IM_RETURN_IF_ERROR(store->Put(key, value));
//   IM_ASSIGN_OR_RETURN(uint64_t seq, seqs->Next(conv_id));
// The enclosing function returns absl::Status or any absl::StatusOr<T>.

namespace im::common::internal {

inline const absl::Status& StatusOf(const absl::Status& status) { return status; }
template <typename T>
const absl::Status& StatusOf(const absl::StatusOr<T>& status_or) {
  return status_or.status();
}

}  // namespace im::common::internal

// Returns the status of `expr` (an absl::Status or absl::StatusOr) when it is not OK.
#define IM_RETURN_IF_ERROR(expr)                             \
  do {                                                       \
    if (const auto& im_result_ = (expr); !im_result_.ok()) { \
      return ::im::common::internal::StatusOf(im_result_);   \
    }                                                        \
  } while (false)

// Declares or assigns `lhs` from the value of `expr` (an absl::StatusOr), or returns its status.
#define IM_ASSIGN_OR_RETURN(lhs, expr) \
  IM_ASSIGN_OR_RETURN_IMPL_(IM_STATUS_CONCAT_(im_status_or_, __LINE__), lhs, expr)

#define IM_ASSIGN_OR_RETURN_IMPL_(status_or, lhs, expr) \
  auto status_or = (expr);                              \
  if (!status_or.ok()) return status_or.status();       \
  lhs = std::move(*status_or)

#define IM_STATUS_CONCAT_(a, b) IM_STATUS_CONCAT_IMPL_(a, b)
#define IM_STATUS_CONCAT_IMPL_(a, b) a##b
