#include "common/token.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstdint>
#include <random>
#include <string>
#include <string_view>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/base64url.h"
#include "common/hmac.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace im::common {
namespace {

constexpr int64_t kNow = 1'700'000'000;
constexpr char kSecret[] = "cluster-shared-secret";

// Computed here with OpenSSL directly, so the tests do not trust token.cc's own HMAC.
std::string ReferenceHmac(std::string_view key, std::string_view data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &mac_len);
  return std::string(reinterpret_cast<const char*>(mac), mac_len);
}

// A correctly signed token around an arbitrary payload, to reach the checks after the signature.
std::string SignRaw(std::string_view payload_json, std::string_view secret = kSecret) {
  const std::string payload = Base64UrlEncode(payload_json);
  return payload + "." + Base64UrlEncode(ReferenceHmac(secret, payload));
}

TokenVerdict Verify(std::string_view token, std::string_view device = "phone") {
  return TokenVerifier(kSecret).Verify(token, device, kNow);
}

TEST(Base64UrlTest, Rfc4648Vectors) {
  EXPECT_EQ(Base64UrlEncode(""), "");
  EXPECT_EQ(Base64UrlEncode("f"), "Zg");
  EXPECT_EQ(Base64UrlEncode("fo"), "Zm8");
  EXPECT_EQ(Base64UrlEncode("foo"), "Zm9v");
  EXPECT_EQ(Base64UrlEncode("foob"), "Zm9vYg");
  EXPECT_EQ(Base64UrlEncode("fooba"), "Zm9vYmE");
  EXPECT_EQ(Base64UrlEncode("foobar"), "Zm9vYmFy");
  // The two characters where the url alphabet differs from the standard one ("+/8=").
  EXPECT_EQ(Base64UrlEncode("\xfb\xff"), "-_8");

  std::string out;
  ASSERT_TRUE(Base64UrlDecode("Zm9vYmFy", &out));
  EXPECT_EQ(out, "foobar");
  ASSERT_TRUE(Base64UrlDecode("Zm9vYmE", &out));
  EXPECT_EQ(out, "fooba");
  ASSERT_TRUE(Base64UrlDecode("Zg", &out));
  EXPECT_EQ(out, "f");
  ASSERT_TRUE(Base64UrlDecode("-_8", &out));
  EXPECT_EQ(out, "\xfb\xff");
  ASSERT_TRUE(Base64UrlDecode("", &out));
  EXPECT_EQ(out, "");
}

TEST(Base64UrlTest, RoundTripsEveryLengthUpTo64) {
  std::mt19937 rng(42);
  for (size_t length = 0; length <= 64; ++length) {
    std::string bytes(length, '\0');
    for (char& c : bytes) c = static_cast<char>(rng() & 0xFF);
    const std::string text = Base64UrlEncode(bytes);
    EXPECT_EQ(text.size(), (length * 4 + 2) / 3) << length;
    EXPECT_EQ(text.find_first_of("+/="), std::string::npos) << length;
    std::string decoded;
    ASSERT_TRUE(Base64UrlDecode(text, &decoded)) << length;
    EXPECT_EQ(decoded, bytes) << length;
  }
}

TEST(Base64UrlTest, RejectsWhatIsNotUnpaddedBase64Url) {
  std::string out;
  EXPECT_FALSE(Base64UrlDecode("Z", &out));      // a lone character cannot hold a byte
  EXPECT_FALSE(Base64UrlDecode("Zm9vY", &out));  // same, after a full group
  EXPECT_FALSE(Base64UrlDecode("Zg==", &out));   // padding
  EXPECT_FALSE(Base64UrlDecode("+/8", &out));    // standard alphabet
  EXPECT_FALSE(Base64UrlDecode("Zm 9v", &out));  // whitespace
  EXPECT_FALSE(Base64UrlDecode("Zm9v\n", &out));
  EXPECT_FALSE(Base64UrlDecode(std::string_view("Zm\0v", 4), &out));
  EXPECT_FALSE(Base64UrlDecode("Zm9v\xc3\xa9", &out));
  // Non-zero leftover bits: "Zh" and "Zm9" would otherwise decode to "f" and "fo".
  EXPECT_FALSE(Base64UrlDecode("Zh", &out));
  EXPECT_FALSE(Base64UrlDecode("Zm9", &out));
}

TEST(TokenTest, ReferenceHmacMatchesRfc4231Case2) {
  EXPECT_EQ(absl::BytesToHexString(ReferenceHmac("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(TokenTest, IssuedAtRoundTripsAndAMalformedOneIsInvalid) {
  const TokenVerifier verifier("secret-of-the-test");
  TokenClaims claims{"alice", 2'000'000'000, "", 1'700'000'000};
  TokenVerdict verdict =
      verifier.Verify(SignToken(claims, "secret-of-the-test"), "", 1'800'000'000);
  ASSERT_TRUE(verdict.ok()) << verdict.detail;
  EXPECT_EQ(verdict.claims.iat_unix_sec, 1'700'000'000);
  claims.iat_unix_sec = 0;  // absent
  verdict = verifier.Verify(SignToken(claims, "secret-of-the-test"), "", 1'800'000'000);
  ASSERT_TRUE(verdict.ok()) << verdict.detail;
  EXPECT_EQ(verdict.claims.iat_unix_sec, 0);
  const std::string payload = Base64UrlEncode(R"({"uid":"alice","exp":2000000000,"iat":"x"})");
  const std::string forged =
      payload + "." + Base64UrlEncode(*HmacSha256("secret-of-the-test", payload));
  verdict = verifier.Verify(forged, "", 1'800'000'000);
  EXPECT_EQ(verdict.code, im::v1::TOKEN_INVALID);
  EXPECT_EQ(verdict.detail, "iat not an integer");
}

TEST(TokenTest, SignatureIsHmacOfTheEncodedPayload) {
  const std::string token = SignToken({"alice", kNow + 60, ""}, "Jefe");
  const size_t dot = token.find('.');
  ASSERT_NE(dot, std::string::npos);
  const std::string payload = token.substr(0, dot);
  EXPECT_EQ(token.substr(dot + 1), Base64UrlEncode(ReferenceHmac("Jefe", payload)));

  std::string json_text;
  ASSERT_TRUE(Base64UrlDecode(payload, &json_text));
  const nlohmann::json json = nlohmann::json::parse(json_text, nullptr, false);
  ASSERT_TRUE(json.is_object());
  EXPECT_EQ(json["uid"], "alice");
  EXPECT_EQ(json["exp"], kNow + 60);
  EXPECT_FALSE(json.contains("dev"));  // unbound tokens carry no device at all
}

TEST(TokenTest, RoundTrip) {
  const TokenClaims claims{"alice", kNow + 60, "phone"};
  const TokenVerdict verdict = Verify(SignToken(claims, kSecret), "phone");
  ASSERT_TRUE(verdict.ok()) << verdict.detail;
  EXPECT_EQ(verdict.claims.uid, "alice");
  EXPECT_EQ(verdict.claims.exp_unix_sec, kNow + 60);
  EXPECT_EQ(verdict.claims.device, "phone");
}

TEST(TokenTest, RoundTripsUnusualUids) {
  for (const std::string uid : {"u", "\"quoted\\\"", "\xe4\xb8\xad\xe6\x96\x87", "a.b"}) {
    const TokenVerdict verdict = Verify(SignToken({uid, kNow + 1, ""}, kSecret));
    ASSERT_TRUE(verdict.ok()) << verdict.detail;
    EXPECT_EQ(verdict.claims.uid, uid);
  }
}

TEST(TokenTest, RefusesToSignClaimsThatAreNotUtf8) {
  // Replacing the bad bytes instead would give "\xff" and "\xfe" the same account.
  EXPECT_EQ(SignToken({"\xff", kNow + 60, ""}, kSecret), "");
  EXPECT_EQ(SignToken({"alice", kNow + 60, "\xfe"}, kSecret), "");
  EXPECT_EQ(Verify("").code, im::v1::TOKEN_INVALID);
}

TEST(TokenTest, AcceptsAReferenceSignedToken) {
  const TokenVerdict verdict = Verify(SignRaw(R"({"uid":"bob","exp":1700000100})"));
  ASSERT_TRUE(verdict.ok()) << verdict.detail;
  EXPECT_EQ(verdict.claims.uid, "bob");
  EXPECT_EQ(verdict.claims.device, "");
}

TEST(TokenTest, WrongSecret) {
  const std::string token = SignToken({"alice", kNow + 60, ""}, "another-secret");
  const TokenVerdict verdict = Verify(token);
  EXPECT_EQ(verdict.code, im::v1::TOKEN_INVALID);
  EXPECT_EQ(verdict.detail, "bad signature");
}

TEST(TokenTest, TamperedPayload) {
  const std::string token = SignToken({"alice", kNow + 60, ""}, kSecret);
  const std::string signature = token.substr(token.find('.') + 1);
  const std::string forged =
      Base64UrlEncode(R"({"uid":"mallory","exp":1700000060})") + "." + signature;
  EXPECT_EQ(Verify(forged).code, im::v1::TOKEN_INVALID);

  std::string flipped = token;
  flipped[3] = flipped[3] == 'A' ? 'B' : 'A';
  EXPECT_EQ(Verify(flipped).code, im::v1::TOKEN_INVALID);
}

TEST(TokenTest, TamperedSignature) {
  const std::string token = SignToken({"alice", kNow + 60, ""}, kSecret);
  std::string flipped = token;
  const size_t pos = token.find('.') + 5;
  flipped[pos] = flipped[pos] == 'A' ? 'B' : 'A';
  EXPECT_EQ(Verify(flipped).detail, "bad signature");

  // 43 characters carry 258 bits for 256: the last one has two spare bits. Setting them must not
  // give a second spelling of the same token.
  constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  const size_t last = kAlphabet.find(token.back());
  ASSERT_EQ(last % 4, 0u);
  for (size_t spare = 1; spare < 4; ++spare) {
    std::string respelled = token;
    respelled.back() = kAlphabet[last | spare];
    EXPECT_EQ(Verify(respelled).code, im::v1::TOKEN_INVALID) << respelled;
  }

  // Signatures of the wrong length are refused before any comparison.
  const std::string payload = token.substr(0, token.find('.'));
  EXPECT_EQ(Verify(payload + "." + Base64UrlEncode("short")).detail, "bad signature");
  EXPECT_EQ(Verify(payload + "." + Base64UrlEncode(ReferenceHmac(kSecret, payload) + "x")).detail,
            "bad signature");
}

TEST(TokenTest, Expiry) {
  EXPECT_TRUE(Verify(SignToken({"alice", kNow + 1, ""}, kSecret)).ok());
  EXPECT_EQ(Verify(SignToken({"alice", kNow, ""}, kSecret)).code, im::v1::TOKEN_EXPIRED);
  EXPECT_EQ(Verify(SignToken({"alice", kNow - 3600, ""}, kSecret)).code, im::v1::TOKEN_EXPIRED);
}

TEST(TokenTest, ExpiryIsCheckedBeforeDevice) {
  const TokenVerdict verdict = Verify(SignToken({"alice", kNow - 1, "phone"}, kSecret), "tablet");
  EXPECT_EQ(verdict.code, im::v1::TOKEN_EXPIRED);
}

TEST(TokenTest, DeviceBinding) {
  const std::string bound = SignToken({"alice", kNow + 60, "phone"}, kSecret);
  EXPECT_TRUE(Verify(bound, "phone").ok());

  const TokenVerdict mismatch = Verify(bound, "tablet");
  EXPECT_EQ(mismatch.code, im::v1::TOKEN_INVALID);
  EXPECT_EQ(mismatch.detail, "device mismatch");
  EXPECT_EQ(Verify(bound, "").code, im::v1::TOKEN_INVALID);

  const std::string unbound = SignToken({"alice", kNow + 60, ""}, kSecret);
  EXPECT_TRUE(Verify(unbound, "phone").ok());
  EXPECT_TRUE(Verify(unbound, "tablet").ok());
  EXPECT_TRUE(Verify(unbound, "").ok());
}

TEST(TokenTest, RejectsMalformedTokens) {
  const std::string good = SignToken({"alice", kNow + 60, ""}, kSecret);
  const std::string payload = good.substr(0, good.find('.'));
  const std::string signature = good.substr(good.find('.') + 1);
  for (const std::string& token : {
           std::string(""),
           std::string("."),
           std::string("abc"),
           payload,
           payload + ".",
           "." + signature,
           good + ".",
           payload + ".." + signature,
           good + "." + signature,
           "ab$d." + signature,
           payload + ".+/" + signature.substr(2),
           payload + "=." + signature,
           payload + "." + signature + "==",
           std::string("a.b.c"),
           std::string("\0\0.\0", 4),
       }) {
    const TokenVerdict verdict = Verify(token);
    EXPECT_EQ(verdict.code, im::v1::TOKEN_INVALID) << absl::CHexEscape(token);
    EXPECT_FALSE(verdict.detail.empty());
  }
}

TEST(TokenTest, RejectsSignedPayloadsWithBadClaims) {
  for (const std::string& json : {
           std::string("not json"),
           std::string(""),
           std::string("{"),
           std::string("null"),
           std::string("[\"uid\",\"a\"]"),
           std::string("\"alice\""),
           std::string("{}"),
           std::string(R"({"exp":1700000060})"),
           std::string(R"({"uid":"","exp":1700000060})"),
           std::string(R"({"uid":null,"exp":1700000060})"),
           std::string(R"({"uid":42,"exp":1700000060})"),
           std::string(R"({"uid":["a"],"exp":1700000060})"),
           std::string(R"({"uid":"a"})"),
           std::string(R"({"uid":"a","exp":"1700000060"})"),
           std::string(R"({"uid":"a","exp":1700000060.5})"),
           std::string(R"({"uid":"a","exp":1.7e9})"),
           std::string(R"({"uid":"a","exp":true})"),
           std::string(R"({"uid":"a","exp":-5})"),
           std::string(R"({"uid":"a","exp":0})"),
           std::string(R"({"uid":"a","exp":18446744073709551615})"),
           std::string(R"({"uid":"a","exp":9223372036854775808})"),
           std::string(R"({"uid":"a","exp":123456789012345678901234567890})"),
           std::string(R"({"uid":"a","exp":1700000060,"dev":7})"),
           std::string(R"({"uid":"a","exp":1700000060,"dev":null})"),
           std::string("{\"uid\":\"\xff\xfe\",\"exp\":1700000060}"),
           std::string(R"({"uid":"a","exp":1700000060} trailing)"),
           std::string(10000, '[') + std::string(10000, ']'),
       }) {
    const TokenVerdict verdict = Verify(SignRaw(json));
    EXPECT_EQ(verdict.code, im::v1::TOKEN_INVALID) << absl::CHexEscape(json.substr(0, 80));
    EXPECT_FALSE(verdict.detail.empty());
  }
}

TEST(TokenTest, AcceptsTheLargestExpiry) {
  const TokenVerdict verdict =
      Verify(SignRaw(R"({"uid":"a","exp":9223372036854775807,"extra":{"x":[1]}})"));
  ASSERT_TRUE(verdict.ok()) << verdict.detail;
  EXPECT_EQ(verdict.claims.exp_unix_sec, INT64_MAX);
}

TEST(TokenTest, DetailNeverEchoesTheSignature) {
  const std::string token = SignToken({"alice", kNow + 60, "phone"}, kSecret);
  const std::string signature = token.substr(token.find('.') + 1);
  for (const std::string_view device : {"phone", "tablet"}) {
    const TokenVerdict verdict = TokenVerifier("wrong").Verify(token, device, kNow);
    EXPECT_EQ(verdict.detail.find(signature), std::string::npos);
    EXPECT_EQ(verdict.detail.find("wrong"), std::string::npos);
  }
}

// Arbitrary bytes, and single-byte mutations of a valid token, must give a verdict, never a crash.
TEST(TokenTest, SurvivesRandomInput) {
  std::mt19937 rng(7);
  const std::string good = SignToken({"alice", kNow + 60, "phone"}, kSecret);
  const std::string alphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/";
  for (int i = 0; i < 5000; ++i) {
    std::string token;
    if (i % 2 == 0) {
      token.resize(rng() % 96);
      for (char& c : token) {
        c = (i % 4 == 0) ? static_cast<char>(rng() & 0xFF) : alphabet[rng() % alphabet.size()];
      }
    } else {
      token = good;
      const size_t pos = rng() % token.size();
      const char replacement = alphabet[rng() % alphabet.size()];
      if (token[pos] == replacement) continue;
      token[pos] = replacement;
    }
    EXPECT_EQ(Verify(token).code, im::v1::TOKEN_INVALID) << absl::CHexEscape(token);
  }
}

}  // namespace
}  // namespace im::common
