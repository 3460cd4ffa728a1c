#include "logic/session/resume_tokens.h"

#include <gtest/gtest.h>

#include "common/token.h"

namespace im::logic {
namespace {

constexpr char kSecret[] = "a-test-secret-of-some-length";
constexpr int64_t kWindowMs = 60'000;

TEST(ResumeTokensTest, AnIssuedTokenVerifiesForItsUserAndDeviceUntilTheWindowEnds) {
  const ResumeTokens tokens(kSecret, kWindowMs);
  const std::string token = tokens.Issue("alice", "phone", 1'000, 5'000);
  absl::StatusOr<ResumeTokens::Claims> claims = tokens.Verify(token, "alice", "phone", 5'000);
  ASSERT_TRUE(claims.ok()) << claims.status();
  EXPECT_EQ(claims->since_ms, 1'000);
  EXPECT_EQ(claims->expires_ms, 5'000 + kWindowMs);
  EXPECT_EQ(claims->id.size(), 32u);
  EXPECT_NE(tokens.Issue("alice", "phone", 1'000, 5'000), token) << "each token has its own id";

  EXPECT_EQ(tokens.Verify(token, "alice", "tablet", 5'000).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(tokens.Verify(token, "bob", "phone", 5'000).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(tokens.Verify(token, "alice", "phone", 5'000 + kWindowMs).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(ResumeTokensTest, ARenewalKeepsTheBaselineAndTheIdAndMovesTheExpiry) {
  const ResumeTokens tokens(kSecret, kWindowMs);
  const ResumeTokens::Claims first =
      *tokens.Verify(tokens.Issue("alice", "phone", 1'000, 5'000), "alice", "phone", 5'000);
  const std::string renewed = tokens.Renew(first, 50'000);
  absl::StatusOr<ResumeTokens::Claims> claims = tokens.Verify(renewed, "alice", "phone", 90'000);
  ASSERT_TRUE(claims.ok()) << claims.status();
  EXPECT_EQ(claims->since_ms, 1'000);
  EXPECT_EQ(claims->id, first.id);
  EXPECT_EQ(claims->expires_ms, 50'000 + kWindowMs);
}

TEST(ResumeTokensTest, ForgedOrForeignTokensAreInvalid) {
  const ResumeTokens tokens(kSecret, kWindowMs);
  const std::string token = tokens.Issue("alice", "phone", 1'000, 5'000);
  for (const std::string& bad :
       {std::string(), std::string("no-dot"), token + "x", "x" + token,
        ResumeTokens("another-secret-entirely", kWindowMs).Issue("alice", "phone", 1'000, 5'000),
        // A login token of the same secret is not a resume token, whatever it holds.
        common::SignToken({"alice", 10'000'000'000, "phone"}, kSecret)}) {
    EXPECT_EQ(tokens.Verify(bad, "alice", "phone", 5'000).status().code(),
              absl::StatusCode::kInvalidArgument)
        << bad;
  }
  // ... and a resume token is not a login token.
  EXPECT_FALSE(common::TokenVerifier(kSecret).Verify(token, "phone", 5).ok());
}

}  // namespace
}  // namespace im::logic
