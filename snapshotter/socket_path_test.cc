// Tests for socket path preparation.
#include "snapshotter/socket_path.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace snapshotter {
namespace {

using ::testing::HasSubstr;

// Short paths: TEST_TMPDIR can exceed the unix socket limit.
std::string Dir(const char* name) {
  std::string d = "/tmp/gpsock-" + std::string(name) + "-" +
                  std::to_string(getpid());
  std::filesystem::remove_all(d);
  return d;
}

int BindSocket(const std::string& path, bool listen_too) {
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  strcpy(addr.sun_path, path.c_str());
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  if (listen_too) {
    EXPECT_EQ(listen(fd, 1), 0);
  }
  return fd;
}

TEST(SocketPathTest, CreatesParentWith0700) {
  std::string d = Dir("mk");
  ASSERT_TRUE(PrepareSocketPath(d + "/sub/s.sock").ok());
  struct stat st;
  ASSERT_EQ(stat((d + "/sub").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  std::filesystem::remove_all(d);
}

TEST(SocketPathTest, ReplacesStaleSocket) {
  std::string d = Dir("stale");
  std::filesystem::create_directories(d);
  std::string path = d + "/s.sock";
  close(BindSocket(path, false));  // bound, nobody listening: stale
  ASSERT_TRUE(PrepareSocketPath(path).ok());
  EXPECT_NE(access(path.c_str(), F_OK), 0);
  std::filesystem::remove_all(d);
}

TEST(SocketPathTest, RefusesLiveSocket) {
  std::string d = Dir("live");
  std::filesystem::create_directories(d);
  std::string path = d + "/s.sock";
  int fd = BindSocket(path, true);
  absl::Status s = PrepareSocketPath(path);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("already serving"));
  EXPECT_EQ(access(path.c_str(), F_OK), 0);
  close(fd);
  std::filesystem::remove_all(d);
}

TEST(SocketPathTest, RefusesForeignFile) {
  std::string d = Dir("foreign");
  std::filesystem::create_directories(d);
  std::string path = d + "/s.sock";
  std::ofstream(path) << "precious";
  absl::Status s = PrepareSocketPath(path);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("regular file"));
  std::ifstream in(path);
  std::string content;
  in >> content;
  EXPECT_EQ(content, "precious");
  std::filesystem::remove_all(d);
}

TEST(SocketPathTest, RefusesRelativeAndLongPaths) {
  EXPECT_EQ(PrepareSocketPath("rel.sock").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(PrepareSocketPath("/tmp/" + std::string(200, 'x')).code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace snapshotter
