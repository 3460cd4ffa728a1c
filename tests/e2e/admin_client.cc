#include "tests/e2e/admin_client.h"

#include <httplib.h>

namespace im::e2e {

AdminAnswer AdminClient::Call(const std::string& method, const std::string& path,
                              const nlohmann::json* body) const {
  httplib::Client client("127.0.0.1", port_);
  client.set_read_timeout(std::chrono::seconds(30));
  const httplib::Headers headers = {{"Authorization", "Bearer " + key_}};
  const std::string text = body != nullptr ? body->dump() : std::string();
  httplib::Result result =
      method == "GET"    ? client.Get(path.c_str(), headers)
      : method == "POST" ? client.Post(path.c_str(), headers, text, "application/json")
      : method == "PUT"  ? client.Put(path.c_str(), headers, text, "application/json")
                         : client.Delete(path.c_str(), headers);
  AdminAnswer answer;
  if (!result) return answer;
  answer.status = result->status;
  answer.body = nlohmann::json::parse(result->body, nullptr, /*allow_exceptions=*/false);
  return answer;
}

AdminAnswer AdminClient::Get(const std::string& path) const { return Call("GET", path, nullptr); }

AdminAnswer AdminClient::Post(const std::string& path, const nlohmann::json& body) const {
  return Call("POST", path, &body);
}

AdminAnswer AdminClient::Put(const std::string& path, const nlohmann::json& body) const {
  return Call("PUT", path, &body);
}

AdminAnswer AdminClient::Delete(const std::string& path) const {
  return Call("DELETE", path, nullptr);
}

}  // namespace im::e2e
