// The schema, as an ordered list of migrations. Migration i (0-based) brings the database
// from user_version i to i+1. Append only: never edit a migration that has shipped.
#pragma once

#include <string_view>
#include <vector>

namespace runner::store {

const std::vector<std::string_view>& migrations();

}  // namespace runner::store
