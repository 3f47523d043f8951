// Guest-side fetches over the frame channel.
#include "guest_agent/host_client.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "kata_volume/verity/sha256.h"
#include "base/status_macros.h"

namespace guest_pull::guest_agent {

void HostClient::Log(absl::string_view line) {
  channel_->Send(kFrameLog, line.substr(0, kMaxFramePayload)).IgnoreError();
}

template <typename Sink>
absl::StatusOr<Fetched> HostClient::Fetch(absl::string_view kind, absl::string_view digest,
                                          uint64_t max_size, Sink sink) {
  nlohmann::json get = {{"kind", std::string(kind)}, {"digest", std::string(digest)}};
  absl::Status status = channel_->Send(kFrameGet, get.dump());
  if (!status.ok()) return status;
  verity::Sha256Hasher hasher;
  Fetched fetched;
  while (true) {
    ASSIGN_OR_RETURN(Frame frame, channel_->Receive());
    if (frame.type == kFrameGetError) {
      return absl::NotFoundError(absl::StrCat("host could not serve ", kind, " ", digest, ": ", frame.payload));
    }
    if (frame.type == kFrameDataEnd) {
      // {"size": N}: what the host sent. Fewer bytes arrived: the answer was cut short.
      nlohmann::json end = nlohmann::json::parse(frame.payload, nullptr, /*allow_exceptions=*/false);
      auto size = end.is_object() ? end.find("size") : end.end();
      if (!end.is_object() || size == end.end() || !size->is_number_unsigned() ||
          size->get<uint64_t>() != fetched.size) {
        return absl::DataLossError(absl::StrCat("end of ", kind, " ", digest, " after ", fetched.size,
                                                " bytes is not {\"size\": ", fetched.size, "}"));
      }
      break;
    }
    if (frame.type != kFrameData) {
      return absl::DataLossError(absl::StrCat("unexpected frame '", std::string(1, frame.type),
                                              "' while fetching ", kind, " ", digest));
    }
    fetched.size += frame.payload.size();
    if (fetched.size > max_size) {
      return absl::ResourceExhaustedError(
          absl::StrCat(kind, " ", digest, " is larger than ", max_size, " bytes"));
    }
    hasher.Update(frame.payload);
    status = sink(frame.payload);
    if (!status.ok()) return status;
  }
  fetched.digest = absl::StrCat("sha256:", hasher.FinishHex());
  return fetched;
}

absl::StatusOr<Fetched> HostClient::FetchToFile(absl::string_view kind, absl::string_view digest,
                                                const std::string& path, uint64_t max_size) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return absl::InternalError(absl::StrCat("create ", path, ": ", strerror(errno)));
  absl::Cleanup close_fd = [fd] { ::close(fd); };
  return Fetch(kind, digest, max_size, [&](const std::string& data) -> absl::Status {
    size_t done = 0;
    while (done < data.size()) {
      ssize_t n = ::write(fd, data.data() + done, data.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return absl::InternalError(absl::StrCat("write ", path, ": ", strerror(errno)));
      done += static_cast<size_t>(n);
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<std::string> HostClient::FetchToMemory(absl::string_view kind, absl::string_view digest,
                                                      uint64_t max_size, Fetched* fetched) {
  std::string out;
  absl::StatusOr<Fetched> result = Fetch(kind, digest, max_size, [&](const std::string& data) {
    out.append(data);
    return absl::OkStatus();
  });
  if (!result.ok()) return result.status();
  *fetched = *result;
  return out;
}

}  // namespace guest_pull::guest_agent
