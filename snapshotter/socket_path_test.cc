// Tests for socket path preparation.
#include "snapshotter/socket_path.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <sched.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <thread>
#include <fstream>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
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

int BindSocket(const std::string& path, bool listen_too,
               int type = SOCK_STREAM) {
  int fd = socket(AF_UNIX, type, 0);
  sockaddr_un addr = UnixSocketAddress(path).value();
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
  // Moved aside, then removed: nothing is left in the directory.
  EXPECT_TRUE(std::filesystem::is_empty(d));
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

ino_t Inode(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(lstat(path.c_str(), &st), 0) << path;
  return st.st_ino;
}

// A live datagram socket (systemd's notify socket, the journal's) answers a
// stream connect() with EPROTOTYPE: it must stay.
TEST(SocketPathTest, RefusesLiveDatagramSocketAndLeavesIt) {
  std::string d = Dir("dgram");
  std::filesystem::create_directories(d);
  std::string path = d + "/notify";
  int fd = BindSocket(path, false, SOCK_DGRAM);
  ino_t before = Inode(path);
  absl::Status s = PrepareSocketPath(path);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr(path));
  EXPECT_THAT(s.message(), HasSubstr("another type"));
  EXPECT_THAT(s.message(), HasSubstr("EPROTOTYPE"));
  EXPECT_EQ(Inode(path), before);
  close(fd);
  std::filesystem::remove_all(d);
}

TEST(SocketPathTest, RefusesLiveSeqpacketSocket) {
  std::string d = Dir("seqp");
  std::filesystem::create_directories(d);
  std::string path = d + "/s.sock";
  int fd = BindSocket(path, true, SOCK_SEQPACKET);
  ino_t before = Inode(path);
  EXPECT_EQ(PrepareSocketPath(path).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Inode(path), before);
  close(fd);
  std::filesystem::remove_all(d);
}

// A listener whose backlog is full makes a non-blocking connect fail with
// EAGAIN: live, refused at once (a blocking connect would hang).
TEST(SocketPathTest, RefusesListenerWithFullBacklogWithoutWaiting) {
  std::string d = Dir("full");
  std::filesystem::create_directories(d);
  std::string path = d + "/s.sock";
  int listener = BindSocket(path, true);
  sockaddr_un addr = UnixSocketAddress(path).value();
  std::vector<int> clients;
  bool full = false;
  for (int i = 0; i < 64 && !full; ++i) {
    int c = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
    clients.push_back(c);
    if (connect(c, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      ASSERT_EQ(errno, EAGAIN);
      full = true;
    }
  }
  ASSERT_TRUE(full) << "the backlog never filled";
  // A hang would show as the test's timeout.
  absl::Status s = PrepareSocketPath(path);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("already serving"));
  EXPECT_EQ(access(path.c_str(), F_OK), 0);
  for (int c : clients) close(c);
  close(listener);
  std::filesystem::remove_all(d);
}

// gRPC clients percent-decode "unix:" addresses: "%41" would dial ".../A".
TEST(SocketPathTest, RefusesPercentInPath) {
  absl::Status s = PrepareSocketPath("/tmp/gp%41.sock");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("\"%\""));
}

// gRPC-Go clients (containerd's proxy plugins) dial the path of the URL
// "unix://" + address: "/tmp/gp?x.sock" and "/tmp/gp#x.sock" would dial
// "/tmp/gp".
TEST(SocketPathTest, RefusesQueryAndFragmentInPath) {
  for (const char* path : {"/tmp/gp?x.sock", "/tmp/gp#x.sock"}) {
    absl::Status s = PrepareSocketPath(path);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << path;
    EXPECT_THAT(s.message(), HasSubstr(std::string("\"") + path[7] + "\""))
        << path;
  }
}

// gRPC-Go refuses a URL with a control character: containerd could not
// even create its client.
TEST(SocketPathTest, RefusesControlCharactersInPath) {
  for (std::string path : {"/tmp/gp\x01.sock", "/tmp/gp\n.sock", "/tmp/gp\x7f.sock"}) {
    absl::Status s = PrepareSocketPath(path);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << path;
    EXPECT_THAT(s.message(), HasSubstr("control character")) << path;
  }
}

TEST(SocketPathTest, RemovesOnlyTheSocketItBound) {
  std::string d = Dir("ours");
  std::filesystem::create_directories(d);
  std::string path = d + "/s.sock";
  int first = BindSocket(path, true);  // open: its inode is not reused
  absl::StatusOr<SocketFile> ours = IdentifySocket(path);
  ASSERT_TRUE(ours.ok()) << ours.status();
  // Another daemon replaced it meanwhile: keep theirs.
  ASSERT_EQ(unlink(path.c_str()), 0);
  int theirs = BindSocket(path, true);
  ASSERT_TRUE(RemoveSocketIfOurs(path, *ours).ok());
  EXPECT_EQ(access(path.c_str(), F_OK), 0);
  // Ours: removed; already gone: fine.
  absl::StatusOr<SocketFile> now = IdentifySocket(path);
  ASSERT_TRUE(now.ok());
  ASSERT_TRUE(RemoveSocketIfOurs(path, *now).ok());
  EXPECT_NE(access(path.c_str(), F_OK), 0);
  EXPECT_TRUE(RemoveSocketIfOurs(path, *now).ok());
  close(theirs);
  close(first);
  std::filesystem::remove_all(d);
}

// Accepts on `fd` (listening) and says whether a client connecting to
// `path` reaches it.
bool Reaches(const std::string& path, int fd) {
  int client = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr = UnixSocketAddress(path).value();
  bool ok =
      connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  int accepted = ok ? accept4(fd, nullptr, nullptr, SOCK_NONBLOCK) : -1;
  close(client);
  if (accepted < 0) return false;
  close(accepted);
  return true;
}

TEST(SocketPathTest, BindingPathIsFreshBesideOrHiddenOrTheAddress) {
  std::string path = "/run/gp/s.sock";
  std::string a = BindingPath(path);
  EXPECT_THAT(a, ::testing::StartsWith(absl::StrCat(path, ".", getpid(), "-")));
  EXPECT_EQ(a.size(), path.size() + 1 + std::to_string(getpid()).size() + 9);
  EXPECT_NE(a, BindingPath(path));  // random: other pid namespaces
  // Too long beside it: hidden in the directory.
  std::string dir = "/" + std::string(80, 'd');
  std::string long_name = dir + "/" + std::string(20, 'n');
  std::string hidden = BindingPath(long_name);
  EXPECT_THAT(hidden, ::testing::StartsWith(absl::StrCat(dir, "/.", getpid())));
  EXPECT_LE(hidden.size(), 107u);
  // Nothing fits: the address itself.
  std::string deep = "/" + std::string(100, 'd') + "/s";
  EXPECT_EQ(BindingPath(deep), deep);
}

// A daemon killed between its bind and the link left its binding name:
// removed if stale and its pid is not running (or is ours: an earlier run in
// another pid namespace); a live socket, a daemon still between its bind and
// its listen, and other files stay.
TEST(SocketPathTest, RemovesStaleBindingNamesOnly) {
  std::string d = Dir("bindings");
  std::filesystem::create_directories(d);
  std::string path = d + "/s.sock";
  // 99999999 is above every pid_max: never a running process.
  close(BindSocket(path + ".99999999-deadbeef", false));  // stale
  close(BindSocket(d + "/.99999998-0000abcd", false));    // stale, hidden form
  close(BindSocket(absl::StrCat(path, ".", getpid(), "-00c0ffee"), false));
  int live = BindSocket(path + ".99999997-0badcafe", true);
  // Bound, not yet listening, by a running process (our parent).
  std::string starting = absl::StrCat("s.sock.", getppid(), "-0000beef");
  close(BindSocket(d + "/" + starting, false));
  close(BindSocket(path + ".9-DEADBEEF", false));  // not a name we make
  close(BindSocket(d + "/other.99999999-deadbeef", false));
  std::ofstream(path + ".99999996-00000000") << "a file";
  ASSERT_TRUE(PrepareSocketPath(path).ok());
  std::vector<std::string> left;
  for (const auto& e : std::filesystem::directory_iterator(d)) {
    left.push_back(e.path().filename().string());
  }
  EXPECT_THAT(left,
              ::testing::UnorderedElementsAre(
                  "s.sock.99999997-0badcafe", starting, "s.sock.9-DEADBEEF",
                  "other.99999999-deadbeef", "s.sock.99999996-00000000"));
  close(live);
  std::filesystem::remove_all(d);
}

// A socket renamed to a binding name too long for a socket address (the
// pid with leading zeros) cannot be probed: it is left, and nothing is
// copied past the end of an address.
TEST(SocketPathTest, LeavesABindingNameTooLongToProbe) {
  std::string d = Dir("longbinding");
  std::filesystem::create_directories(d);
  std::string path = d + "/s.sock";
  std::string bound = path + ".99999999-deadbeef";
  close(BindSocket(bound, false));
  std::string name = "s.sock." + std::string(120, '0') + "99999999-deadbeef";
  ASSERT_EQ(rename(bound.c_str(), (d + "/" + name).c_str()), 0);
  EXPECT_TRUE(PrepareSocketPath(path).ok());
  EXPECT_TRUE(std::filesystem::exists(d + "/" + name));
  std::filesystem::remove_all(d);
}

TEST(SocketPathTest, PublishNamesTheBoundSocketAndRemovesTheBinding) {
  std::string d = Dir("publish");
  std::filesystem::create_directories(d);
  std::string path = d + "/s.sock";
  std::string binding = BindingPath(path);
  int fd = BindSocket(binding, true);
  absl::Status s = PublishSocket(binding, path);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_NE(access(binding.c_str(), F_OK), 0);
  EXPECT_TRUE(Reaches(path, fd));
  close(fd);
  // Bound at the address itself (no binding name fitted): nothing to do.
  EXPECT_TRUE(PublishSocket(path, path).ok());
  std::filesystem::remove_all(d);
}

// The race PublishSocket closes: another daemon bound the address between
// PrepareSocketPath and our bind. The link refuses and leaves it.
TEST(SocketPathTest, PublishRefusesAnAddressTakenMeanwhile) {
  std::string d = Dir("taken");
  std::filesystem::create_directories(d);
  std::string path = d + "/s.sock";
  ASSERT_TRUE(PrepareSocketPath(path).ok());
  int theirs = BindSocket(path, true);
  std::string binding = BindingPath(path);
  int ours = BindSocket(binding, true);
  absl::Status s = PublishSocket(binding, path);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("second containerd-guest-pull-grpc"));
  EXPECT_NE(access(binding.c_str(), F_OK), 0);
  EXPECT_TRUE(Reaches(path, theirs));
  close(ours);
  close(theirs);
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

// The start's first check refuses what PrepareSocketPath refuses and
// changes nothing: a missing directory is not made, a stale socket and a
// stale binding name stay (PrepareSocketPath handles them once the store
// is open).
TEST(SocketPathTest, CheckRefusesAsPrepareAndChangesNothing) {
  std::string d = Dir("check");
  EXPECT_TRUE(CheckSocketPath(d + "/sub/s.sock").ok());
  EXPECT_FALSE(std::filesystem::exists(d));
  std::filesystem::create_directories(d);
  std::string path = d + "/s.sock";
  close(BindSocket(path, false));  // stale
  close(BindSocket(path + ".99999999-deadbeef", false));  // stale binding
  EXPECT_TRUE(CheckSocketPath(path).ok());
  EXPECT_TRUE(std::filesystem::exists(path));
  EXPECT_TRUE(std::filesystem::exists(path + ".99999999-deadbeef"));
  std::filesystem::remove(path);
  int live = BindSocket(path, true);
  EXPECT_THAT(CheckSocketPath(path).message(), HasSubstr("already serving"));
  close(live);
  std::filesystem::remove(path);
  std::ofstream(path) << "precious";
  EXPECT_THAT(CheckSocketPath(path).message(), HasSubstr("regular file"));
  EXPECT_THAT(CheckSocketPath(path + "/s.sock").message(),
              HasSubstr("is not a directory"));
  EXPECT_EQ(CheckSocketPath("rel.sock").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CheckSocketPath(d + "/%41.sock").code(),
            absl::StatusCode::kInvalidArgument);
  std::filesystem::remove_all(d);
}

// A missing directory that cannot be made is refused by the check (the
// start's first, before its store is opened), not only by
// PrepareSocketPath; one that can be made is not made, and trying leaves
// nothing behind.
TEST(SocketPathTest, CheckRefusesADirectoryThatCannotBeMade) {
  const std::string under_proc =
      absl::StrCat("/proc/gpsock-", getpid(), "/sub/s.sock");
  absl::Status s = CheckSocketPath(under_proc);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_THAT(s.message(),
              HasSubstr(absl::StrCat("cannot create socket directory /proc/"
                                     "gpsock-", getpid(), "/sub: ")));
  EXPECT_THAT(s.message(), HasSubstr("(no directory can be made in /proc)"));
  EXPECT_EQ(PrepareSocketPath(under_proc).code(),
            absl::StatusCode::kFailedPrecondition);
  std::string d = Dir("canmake");
  std::filesystem::create_directories(d);
  EXPECT_TRUE(CheckSocketPath(d + "/a/b/s.sock").ok());
  EXPECT_TRUE(std::filesystem::is_empty(d));
  std::filesystem::remove_all(d);
}

// A start killed between making its probe and removing it left it behind:
// the next check removes such empty probes of the same name form in that
// ancestor; a probe-named directory that holds something, a file of that
// name, and names of another form stay.
TEST(SocketPathTest, CheckRemovesProbesLeftByAnEarlierCheck) {
  std::string d = Dir("leftprobe");
  std::filesystem::create_directories(d + "/.gp-socket-dir-check-a1B2c3");
  std::filesystem::create_directories(d + "/.gp-socket-dir-check-Zz9Yy8");
  std::filesystem::create_directories(d + "/.gp-socket-dir-check-keep01/x");
  std::filesystem::create_directories(d + "/.gp-socket-dir-check-toolong");
  std::ofstream(d + "/.gp-socket-dir-check-file01") << "a file";
  // One cut short after its socket was bound: removed with it. A link of
  // that name to a directory holding one is not followed.
  std::filesystem::create_directories(d + "/.gp-socket-dir-check-sock01");
  std::filesystem::create_directories(d + "/elsewhere");
  for (const std::string& at :
       {d + "/.gp-socket-dir-check-sock01/s", d + "/elsewhere/s"}) {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    ASSERT_LT(at.size(), sizeof(addr.sun_path));
    memcpy(addr.sun_path, at.c_str(), at.size() + 1);
    ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0) << at;
    close(fd);
  }
  std::filesystem::create_directory_symlink(
      d + "/elsewhere", d + "/.gp-socket-dir-check-link01");
  EXPECT_TRUE(CheckSocketPath(d + "/a/s.sock").ok());
  EXPECT_TRUE(std::filesystem::is_socket(d + "/elsewhere/s"));
  std::filesystem::remove_all(d + "/elsewhere");
  std::filesystem::remove(d + "/.gp-socket-dir-check-link01");
  std::vector<std::string> left;
  for (const auto& e : std::filesystem::directory_iterator(d)) {
    left.push_back(e.path().filename().string());
  }
  EXPECT_THAT(left, ::testing::UnorderedElementsAre(
                        ".gp-socket-dir-check-keep01",
                        ".gp-socket-dir-check-toolong",
                        ".gp-socket-dir-check-file01"));
  std::filesystem::remove_all(d);
}

// A symbolic link to nothing on the way (the directory itself, or a part
// above it) would fail create_directories once the store is open: the first
// check refuses it, naming the link, and makes nothing.
TEST(SocketPathTest, CheckRefusesADanglingLinkOnTheWay) {
  std::string d = Dir("dangling");
  std::filesystem::create_directories(d);
  std::filesystem::create_symlink(d + "/nowhere/x", d + "/link");
  for (const std::string& path : {d + "/link/s.sock", d + "/link/a/b/s.sock"}) {
    absl::Status s = CheckSocketPath(path);
    EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << path << ": " << s;
    EXPECT_THAT(s.message(), HasSubstr(d + "/link is a symbolic link to " + d +
                                       "/nowhere/x, which does not exist"));
    EXPECT_FALSE(std::filesystem::exists(d + "/nowhere"));
  }
  std::filesystem::remove_all(d);
}

// Runs `body` in a child process, where mount namespaces and Landlock
// rules it sets up stay, and returns its exit status (-1 if it did not
// exit; 77 by convention: it could not set itself up).
int ExitStatusInChild(const std::function<int()>& body) {
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) _exit(body());
  int status = 0;
  if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

// A mount namespace of the caller's own, whose mounts reach no other.
bool OwnMountNamespace() {
  return unshare(CLONE_NEWNS) == 0 &&
         mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0;
}

// An existing directory on a read-only filesystem is refused by the first
// check, naming the address; before, bind failed only once the store was
// open (a new root's store made, the binding name in the error). Needs a
// mount namespace of its own: skipped where it cannot make one.
TEST(SocketPathTest, CheckRefusesAReadOnlyDirectory) {
  std::string d = Dir("readonly");
  std::filesystem::create_directories(d);
  int status = ExitStatusInChild([&d] {
    if (!OwnMountNamespace() ||
        mount(d.c_str(), d.c_str(), nullptr, MS_BIND, nullptr) != 0 ||
        mount(nullptr, d.c_str(), nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY,
              nullptr) != 0) {
      return 77;
    }
    absl::Status s = CheckSocketPath(d + "/s.sock");
    bool named = s.code() == absl::StatusCode::kFailedPrecondition &&
                 absl::StrContains(s.message(),
                                   "cannot create the socket " + d +
                                       "/s.sock: its directory " + d +
                                       " takes no new entries (Read-only "
                                       "file system (EROFS))");
    return named ? 0 : 1;
  });
  std::filesystem::remove_all(d);
  if (status == 77) GTEST_SKIP() << "no mount namespace here";
  EXPECT_EQ(status, 0);
}

// A directory root may write but where no unix socket can be made (sysfs,
// a filesystem without sockets; here a Landlock ruleset that denies
// making sockets and allows the rest) is refused by the first check,
// naming the address, whether the directory exists or would be made; the
// probe leaves nothing. Before, bind failed only once the store was open.
// Skipped where Landlock is unavailable.
TEST(SocketPathTest, CheckRefusesADirectoryThatHoldsNoSockets) {
  std::string d = Dir("nosock");
  std::filesystem::create_directories(d);
  int status = ExitStatusInChild([&d] {
    landlock_ruleset_attr attr{};
    attr.handled_access_fs = LANDLOCK_ACCESS_FS_MAKE_SOCK;
    const long ruleset =
        syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0);
    if (ruleset < 0 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        syscall(SYS_landlock_restrict_self, ruleset, 0) != 0) {
      return 77;
    }
    int failures = 0;
    // The directory itself, and the one its probe is made in.
    for (const std::string& path : {d + "/s.sock", d + "/a/b/s.sock"}) {
      absl::Status s = CheckSocketPath(path);
      if (s.code() != absl::StatusCode::kFailedPrecondition ||
          !absl::StrContains(s.message(),
                             "cannot create the socket " + path +
                                 ": no unix socket can be made in " + d +
                                 " (bind: Permission denied (EACCES))")) {
        fprintf(stderr, "%s: %s\n", path.c_str(), s.ToString().c_str());
        ++failures;
      }
    }
    return failures == 0 ? 0 : 1;
  });
  const bool empty = std::filesystem::is_empty(d);
  std::filesystem::remove_all(d);
  if (status == 77) GTEST_SKIP() << "no Landlock here";
  EXPECT_EQ(status, 0);
  EXPECT_TRUE(empty) << "the probe left something in " << d;
}

// Runs `check` in a child with its own mount namespace, `dir` a tmpfs with
// no inode left (a full /run); its exit status, 77 where that cannot be
// made (the caller skips).
int StatusOnAFullFilesystem(const std::string& dir,
                            const std::function<int()>& check) {
  std::filesystem::create_directories(dir);
  int status = ExitStatusInChild([&] {
    if (!OwnMountNamespace() ||
        mount("tmpfs", dir.c_str(), "tmpfs", 0, "nr_inodes=4,size=64k") != 0) {
      return 77;
    }
    int made = 0;
    for (; made < 16; ++made) {  // until no inode is left
      int fd = open(absl::StrCat(dir, "/f", made).c_str(),
                    O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
      if (fd < 0) break;
      close(fd);
    }
    if (made == 16 || errno != ENOSPC) return 77;
    return check();
  });
  std::filesystem::remove_all(dir);
  return status;
}

// A directory on a full filesystem holds sockets once there is room: the
// first check says the place is full, not that it holds no sockets and
// another --address is needed. Skipped without a mount namespace.
TEST(SocketPathTest, CheckSaysAFullDirectoryIsFull) {
  std::string d = Dir("full");
  int status = StatusOnAFullFilesystem(d, [&d] {
    const std::string path = d + "/s.sock";
    absl::Status s = CheckSocketPath(path);
    bool said = s.code() == absl::StatusCode::kFailedPrecondition &&
                absl::StrContains(s.message(),
                                  "cannot create the socket " + path +
                                      ": no room for it in " + d +
                                      " (bind: No space left on device "
                                      "(ENOSPC)); free space or inodes "
                                      "there") &&
                !absl::StrContains(s.message(), "another --address");
    if (!said) fprintf(stderr, "%s\n", s.ToString().c_str());
    return said ? 0 : 1;
  });
  if (status == 77) GTEST_SKIP() << "no mount namespace here";
  EXPECT_EQ(status, 0);
}

// The same for a missing socket directory on a full filesystem: the
// message says the place is full and to free space there, not only "no
// directory can be made" (read as a read-only place or /proc, where
// another --address is the way out).
TEST(SocketPathTest, CheckSaysAFullAncestorIsFull) {
  std::string d = Dir("full-ancestor");
  int status = StatusOnAFullFilesystem(d, [&d] {
    const std::string path = d + "/sub/s.sock";
    absl::Status s = CheckSocketPath(path);
    bool said = s.code() == absl::StatusCode::kFailedPrecondition &&
                absl::StrContains(s.message(),
                                  "cannot create socket directory " + d +
                                      "/sub: no room for it in " + d +
                                      " (No space left on device (ENOSPC)); "
                                      "free space or inodes there") &&
                !absl::StrContains(s.message(), "no directory can be made");
    if (!said) fprintf(stderr, "%s\n", s.ToString().c_str());
    return said ? 0 : 1;
  });
  if (status == 77) GTEST_SKIP() << "no mount namespace here";
  EXPECT_EQ(status, 0);
}

// The socket's directory removed once while the start checks it (an
// operator, another start's cleanup): the check takes it for a missing
// one, which PrepareSocketPath makes, whenever the removal lands. Before,
// a removal between the first look and the bind's probe refused the start
// with the bind's ENOENT and "choose another --address". The removal comes
// from another thread after a delay swept over the check's duration (a few
// hundred microseconds here), so some fall inside that window; bounded.
TEST(SocketPathTest, CheckTakesADirectoryRemovedMeanwhileForAMissingOne) {
  const std::string d = Dir("vanish");
  const std::string sock = d + "/run/s.sock";
  int failures = 0;
  std::string first;
  for (int i = 0; i < 1000; ++i) {
    std::filesystem::create_directories(d + "/run");
    const auto delay = std::chrono::microseconds(i % 100 * 2);
    std::atomic<int> step{0};
    std::thread remover([&] {
      step.store(1);
      while (step.load() != 2) {
      }
      const auto until = std::chrono::steady_clock::now() + delay;
      while (std::chrono::steady_clock::now() < until) {
      }
      std::error_code ec;  // a probe's socket bound meanwhile: not removed
      std::filesystem::remove_all(d + "/run", ec);
    });
    while (step.load() != 1) {
    }
    step.store(2);
    absl::Status s = CheckSocketPath(sock);
    remover.join();
    if (!s.ok() && failures++ == 0) first = s.ToString();
  }
  std::filesystem::remove_all(d);
  EXPECT_EQ(failures, 0) << "first: " << first;
}

TEST(SocketPathTest, UnixSocketAddressHoldsAtMost107Bytes) {
  std::string longest = "/" + std::string(106, 'x');
  absl::StatusOr<sockaddr_un> addr = UnixSocketAddress(longest);
  ASSERT_TRUE(addr.ok()) << addr.status();
  EXPECT_EQ(addr->sun_family, AF_UNIX);
  EXPECT_EQ(std::string(addr->sun_path), longest);
  absl::Status too_long = UnixSocketAddress(longest + "x").status();
  EXPECT_EQ(too_long.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(
      too_long.message().find("108 bytes; unix sockets allow at most 107"),
      absl::string_view::npos)
      << too_long;
}

TEST(SocketPathTest, RefusesRelativeAndLongPaths) {
  EXPECT_EQ(PrepareSocketPath("rel.sock").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(PrepareSocketPath("/tmp/" + std::string(200, 'x')).code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace snapshotter
