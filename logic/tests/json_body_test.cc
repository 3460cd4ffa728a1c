// The admin API's request bodies: only the fields an operation names, each of its type and range;
// the first mistake is the answer.
#include "logic/admin/json_body.h"

#include <gtest/gtest.h>

#include "logic/admin/admin_reply.h"

namespace im::logic {
namespace {

TEST(JsonBodyTest, ReadsKnownFieldsOfTheirTypes) {
  JsonBody body(R"({"uids":["a","b"],"name":"team","n":5})", false, {"uids", "name", "n"});
  EXPECT_EQ(body.Uids("uids", 1, 10), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(body.String("name", 0, 10), "team");
  EXPECT_EQ(body.Integer("n", 1, 5), 5);
  EXPECT_FALSE(body.String("absent", 0, 10).has_value());
  EXPECT_TRUE(body.ok()) << body.status();
}

TEST(JsonBodyTest, EveryMistakeIsInvalidArgumentNamingIt) {
  const struct {
    const char* text;
    const char* mistake;
  } cases[] = {
      {"{bad", "not JSON"},
      {"[1]", "JSON object"},
      {R"({"extra":1})", "unknown field \"extra\""},
      {R"({"n":"5"})", "n must be an integer"},
      {R"({"n":6})", "n must be an integer from 1 to 5"},
      {R"({"n":1.5})", "n must be an integer"},
      {R"({"uids":"a"})", "uids must be an array"},
      {R"({"uids":["a:b"]})", "uids must hold uids"},
      {R"({"uids":[]})", "uids must be an array of 1-10"},
  };
  for (const auto& c : cases) {
    JsonBody body(c.text, false, {"n", "uids"});
    body.Integer("n", 1, 5);
    body.Uids("uids", 1, 10);
    EXPECT_EQ(body.status().code(), absl::StatusCode::kInvalidArgument) << c.text;
    EXPECT_NE(body.status().message().find(c.mistake), std::string::npos)
        << c.text << ": " << body.status();
  }
}

TEST(JsonBodyTest, AnEmptyOptionalBodyIsAnEmptyObjectARequiredFieldIsNamed) {
  JsonBody optional("", true, {"device"});
  EXPECT_FALSE(optional.String("device", 1, 5).has_value());
  EXPECT_TRUE(optional.ok());
  JsonBody required("{}", false, {"id"});
  required.Required("id", required.String("id", 1, 5));
  EXPECT_EQ(required.status().message(), "id is required");
  JsonBody empty("", false, {"id"});
  EXPECT_FALSE(empty.ok()) << "a required body may not be empty";
}

TEST(AdminReplyTest, CodesMapToTheirHttpStatusAndNameTheCode) {
  EXPECT_EQ(HttpStatusOf(im::v1::NOT_MEMBER), 403);
  EXPECT_EQ(HttpStatusOf(im::v1::MUTED), 403);
  EXPECT_EQ(HttpStatusOf(im::v1::GROUP_FULL), 422);
  EXPECT_EQ(HttpStatusOf(im::v1::DATA_LOSS), 500);
  AdminReply overloaded = AdminReply::Refused(im::v1::RESOURCE_EXHAUSTED, "busy", 1'500);
  EXPECT_EQ(overloaded.status, 429);
  EXPECT_EQ(overloaded.body["error"]["code"], "RESOURCE_EXHAUSTED");
  EXPECT_EQ(overloaded.body["error"]["retry_after_ms"], 1'500);
}

}  // namespace
}  // namespace im::logic
