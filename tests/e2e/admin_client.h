#pragma once

#include <cstdint>
#include <string>

#include "nlohmann/json.hpp"

namespace im::e2e {

// What the admin API answered: the HTTP status (0: no answer) and the JSON body.
struct AdminAnswer {
  int status = 0;
  nlohmann::json body;
};

// The admin API (logic/admin) of a deployment, called as an app server would.
class AdminClient {
 public:
  AdminClient(uint16_t port, std::string key) : port_(port), key_(std::move(key)) {}

  AdminAnswer Get(const std::string& path) const;
  AdminAnswer Post(const std::string& path, const nlohmann::json& body) const;
  AdminAnswer Put(const std::string& path, const nlohmann::json& body) const;
  AdminAnswer Delete(const std::string& path) const;

 private:
  AdminAnswer Call(const std::string& method, const std::string& path,
                   const nlohmann::json* body) const;

  uint16_t port_;
  std::string key_;
};

}  // namespace im::e2e
