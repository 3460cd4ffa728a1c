#pragma once

#include <string>

namespace im::store::testing {

// Names the typed tests of a contract suite by backend (MessageStoreContractTest/Sqlite.*) rather
// than by index, so that one backend's can be run alone: --gtest_filter='*/InMemory.*:*/Sqlite.*'
// needs no MariaDB. Each backend class names itself in `static constexpr char kName[]`.
struct BackendName {
  template <typename Backend>
  static std::string GetName(int) {
    return Backend::kName;
  }
};

}  // namespace im::store::testing
