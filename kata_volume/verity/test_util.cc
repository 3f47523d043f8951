// Test helpers for the verity package.
#include "kata_volume/verity/test_util.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace guest_pull::verity::testing {

std::string MakeTempDir() {
  const char* base = getenv("TEST_TMPDIR");
  std::string tmpl = absl::StrCat(base != nullptr ? base : "/tmp", "/vt.XXXXXX");
  if (mkdtemp(tmpl.data()) == nullptr) {
    std::cerr << "mkdtemp failed: " << strerror(errno) << "\n";
    abort();
  }
  return tmpl;
}

void WriteFileOrDie(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
  if (!out) {
    std::cerr << "cannot write " << path << "\n";
    abort();
  }
}

std::string ReadFileOrDie(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::cerr << "cannot read " << path << "\n";
    abort();
  }
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

absl::StatusOr<std::string> RunCommand(const std::string& command) {
  FILE* p = popen(command.c_str(), "r");
  if (p == nullptr) return absl::InternalError(absl::StrCat("popen failed: ", command));
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  int status = pclose(p);
  if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return absl::InternalError(absl::StrCat("command failed (status ", status, "): ", command,
                                            "\noutput: ", out));
  }
  return out;
}

std::string PseudoRandomBytes(size_t size, uint64_t seed) {
  std::string out(size, '\0');
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < size; i += 8) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    for (size_t j = 0; j < 8 && i + j < size; ++j) out[i + j] = static_cast<char>(x >> (8 * j));
  }
  return out;
}

std::string VeritysetupPath() {
  for (const char* p : {"/usr/sbin/veritysetup", "/sbin/veritysetup"}) {
    if (access(p, X_OK) == 0) return p;
  }
  return "";
}

absl::StatusOr<std::string> VeritysetupRootHash(const std::string& data_path) {
  std::string tool = VeritysetupPath();
  if (tool.empty()) return absl::NotFoundError("veritysetup is not installed");
  std::string hash_file = data_path + ".hashtree";
  absl::StatusOr<std::string> out = RunCommand(absl::StrCat(
      tool, " format --no-superblock --hash=sha256 --data-block-size=4096 --hash-block-size=4096 ",
      "--salt=", std::string(64, '0'), " '", data_path, "' '", hash_file, "' 2>&1"));
  unlink(hash_file.c_str());
  if (!out.ok()) return out.status();
  std::istringstream lines(*out);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("Root hash:", 0) == 0) {
      std::string v = line.substr(std::strlen("Root hash:"));
      v.erase(0, v.find_first_not_of(" \t"));
      v.erase(v.find_last_not_of(" \t\r") + 1);
      return v;
    }
  }
  return absl::InternalError(absl::StrCat("no Root hash line in: ", *out));
}

namespace {
void PutOctal(char* field, size_t len, uint64_t v) {
  std::string s = absl::StrFormat("%0*o", static_cast<int>(len - 1), v);
  std::memcpy(field, s.data(), std::min(s.size(), len - 1));
  field[len - 1] = '\0';
}
}  // namespace

std::string TarHeader(const RawHeader& h) {
  char b[512];
  std::memset(b, 0, sizeof(b));
  std::memcpy(b, h.name.data(), std::min<size_t>(h.name.size(), 100));
  PutOctal(b + 100, 8, h.mode);
  PutOctal(b + 108, 8, h.uid);
  PutOctal(b + 116, 8, h.gid);
  PutOctal(b + 124, 12, h.size);
  PutOctal(b + 136, 12, h.mtime);
  b[156] = h.type;
  std::memcpy(b + 157, h.linkname.data(), std::min<size_t>(h.linkname.size(), 100));
  if (h.gnu_magic) {
    std::memcpy(b + 257, "ustar  ", 8);
  } else {
    std::memcpy(b + 257, "ustar", 6);
    std::memcpy(b + 263, "00", 2);
    std::memcpy(b + 345, h.prefix.data(), std::min<size_t>(h.prefix.size(), 155));
  }
  PutOctal(b + 329, 8, h.dev_major);
  PutOctal(b + 337, 8, h.dev_minor);
  std::memset(b + 148, ' ', 8);
  unsigned sum = 0;
  for (unsigned char c : b) sum += c;
  std::string cks = absl::StrFormat("%06o", sum);
  std::memcpy(b + 148, cks.data(), 6);
  b[154] = '\0';
  b[155] = ' ';
  return std::string(b, sizeof(b));
}

std::string TarData(const std::string& data) {
  std::string out = data;
  out.append((512 - data.size() % 512) % 512, '\0');
  return out;
}

std::string TarMember(const RawHeader& h, const std::string& data) {
  RawHeader copy = h;
  if (h.type == '0' || h.type == 'x' || h.type == 'L' || h.type == 'K') copy.size = data.size();
  return TarHeader(copy) + TarData(data);
}

std::string PaxMember(const std::vector<std::pair<std::string, std::string>>& records) {
  std::string body;
  for (const auto& [k, v] : records) {
    std::string rec = absl::StrCat(" ", k, "=", v, "\n");
    size_t len = rec.size() + 1;
    while (absl::StrCat(len).size() + rec.size() != len) ++len;
    absl::StrAppend(&body, len, rec);
  }
  RawHeader h;
  h.name = "PaxHeaders/x";
  h.type = 'x';
  return TarMember(h, body);
}

std::string TarTrailer() { return std::string(1024, '\0'); }

long PagesInPageCache(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0 || st.st_size == 0) return -1;
  const size_t size = static_cast<size_t>(st.st_size);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) return -1;
  std::vector<unsigned char> pages((size + 4095) / 4096);
  long resident = -1;
  if (::mincore(map, size, pages.data()) == 0) {
    resident = 0;
    for (unsigned char p : pages) resident += p & 1;
  }
  ::munmap(map, size);
  return resident;
}

bool DirectWritesBypassPageCache(const std::string& dir) {
  const std::string path = dir + "/direct-probe";
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_DIRECT | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  std::unique_ptr<char, decltype(&std::free)> block(
      static_cast<char*>(std::aligned_alloc(4096, 4096)), &std::free);
  std::memset(block.get(), 'p', 4096);
  const bool written = ::write(fd, block.get(), 4096) == 4096;
  ::close(fd);
  const bool bypassed = written && PagesInPageCache(path) == 0;
  ::unlink(path.c_str());
  return bypassed;
}

}  // namespace guest_pull::verity::testing
