#include "store/migration_file.h"

#include <charconv>

namespace im::store {

uint32_t MigrationFile::version() const {
  uint32_t version = 0;
  std::from_chars(file_name.data(), file_name.data() + 4, version);
  return version;
}

std::string_view MigrationFile::name() const {
  return file_name.substr(5, file_name.size() - 5 - 4);  // after "NNNN_", before ".sql"
}

}  // namespace im::store
