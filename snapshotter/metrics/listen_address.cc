// Parsing of the metrics listen address.
#include "snapshotter/metrics/listen_address.h"

#include <arpa/inet.h>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace snapshotter {
namespace {

absl::Status Bad(absl::string_view address, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(
      "metrics address \"", absl::CEscape(address), "\": ", why,
      " (want IPv4:port, localhost:port or :port, e.g. \"127.0.0.1:9110\")"));
}

}  // namespace

absl::StatusOr<std::string> ListenSpec(absl::string_view address) {
  // "http://127.0.0.1:9110" was called an IPv6 address (its host part,
  // "http://127.0.0.1", holds a colon).
  if (size_t scheme = address.find("://"); scheme != absl::string_view::npos) {
    return Bad(address,
               absl::StrCat("a listen address takes no scheme (drop \"",
                            absl::CEscape(address.substr(0, scheme + 3)),
                            "\")"));
  }
  if (!address.empty() && address.front() == '[') {
    return Bad(address, "IPv6 addresses are not supported");
  }
  size_t colon = address.rfind(':');
  if (colon == absl::string_view::npos) return Bad(address, "missing port");
  absl::string_view host = address.substr(0, colon);
  absl::string_view port_text = address.substr(colon + 1);

  if (port_text.empty() || port_text.size() > 5) {
    return Bad(address, "port must be a number from 0 to 65535");
  }
  for (char c : port_text) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) {
      return Bad(address, "port must be a number from 0 to 65535");
    }
  }
  int port = 0;
  if (!absl::SimpleAtoi(port_text, &port) || port > 65535) {
    return Bad(address, "port must be a number from 0 to 65535");
  }

  std::string ip;
  if (host.empty()) {
    ip = "0.0.0.0";
  } else if (host == "localhost") {
    ip = "127.0.0.1";
  } else {
    if (host.find(':') != absl::string_view::npos) {
      return Bad(address, "IPv6 addresses are not supported");
    }
    in_addr parsed{};
    // inet_pton reads a C string: a NUL byte would end the host early.
    if (host.find('\0') != absl::string_view::npos ||
        inet_pton(AF_INET, std::string(host).c_str(), &parsed) != 1) {
      return Bad(address, "host must be an IPv4 address or \"localhost\"");
    }
    char text[INET_ADDRSTRLEN] = {};
    inet_ntop(AF_INET, &parsed, text, sizeof(text));
    ip = text;
  }
  return absl::StrCat(ip, ":", port);
}

}  // namespace snapshotter
