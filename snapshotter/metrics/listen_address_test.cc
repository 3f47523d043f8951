// Tests for the metrics listen address parser.
#include "snapshotter/metrics/listen_address.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace snapshotter {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(ListenSpecTest, AcceptsIpv4Localhost0AndEmptyHost) {
  EXPECT_EQ(*ListenSpec("127.0.0.1:9100"), "127.0.0.1:9100");
  EXPECT_EQ(*ListenSpec("10.1.2.3:0"), "10.1.2.3:0");
  EXPECT_EQ(*ListenSpec("0.0.0.0:65535"), "0.0.0.0:65535");
  EXPECT_EQ(*ListenSpec("localhost:9100"), "127.0.0.1:9100");
  EXPECT_EQ(*ListenSpec(":9100"), "0.0.0.0:9100");
  EXPECT_EQ(*ListenSpec("127.0.0.1:09100"), "127.0.0.1:9100");
}

TEST(ListenSpecTest, RefusesMalformedAddressesNamingThem) {
  for (const char* bad :
       {"", "bogus", "9100", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536",
        "127.0.0.1:123456", "127.0.0.1:-1", "127.0.0.1:9100s",
        "127.0.0.1:9100r", "127.0.0.1:91,9200", "999.1.1.1:80", "1.2.3:80",
        "01.2.3.4:80", "host.example:9100", "[::1]:9100", "::1:9100",
        " 127.0.0.1:9100", "127.0.0.1:+80"}) {
    absl::StatusOr<std::string> spec = ListenSpec(bad);
    ASSERT_FALSE(spec.ok()) << bad << " -> " << *spec;
    EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(spec.status().message(),
                HasSubstr(std::string("\"") + bad + "\""));
  }
}

TEST(ListenSpecTest, RefusesANulByteInTheHost) {
  // inet_pton would read only the part before it.
  const std::string address("127.0.0.1\0x:9110", 16);
  absl::StatusOr<std::string> spec = ListenSpec(address);
  ASSERT_FALSE(spec.ok()) << *spec;
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(spec.status().message(), HasSubstr("\"127.0.0.1\\000x:9110\""));
}

TEST(ListenSpecTest, SaysWhyIpv6IsRefused) {
  EXPECT_THAT(ListenSpec("[::1]:9100").status().message(),
              HasSubstr("IPv6 addresses are not supported"));
}

// "http://127.0.0.1:9110" was refused as an IPv6 address.
TEST(ListenSpecTest, SaysAListenAddressTakesNoScheme) {
  const std::string message(
      ListenSpec("http://127.0.0.1:9110").status().message());
  EXPECT_THAT(message, HasSubstr("takes no scheme (drop \"http://\")"));
  EXPECT_THAT(message, Not(HasSubstr("IPv6")));
}

}  // namespace
}  // namespace snapshotter
