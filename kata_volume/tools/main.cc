// guest-pull-verity: layer dm-verity hashes and genpolicy layer caches.
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <iostream>
#include <streambuf>
#include <string>
#include <vector>

#include "kata_volume/tools/verity_cli.h"

namespace {

// Standard output, unbuffered, keeping the errno of the write(2) that
// failed (a full disk, a closed stdout): an ostream keeps only that it
// failed. A reader gone from a pipe ends the process with SIGPIPE first.
class StdoutBuf : public std::streambuf {
 public:
  int error() const { return error_; }

 protected:
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    return Write(s, static_cast<size_t>(n)) ? n : 0;
  }
  int_type overflow(int_type c) override {
    if (traits_type::eq_int_type(c, traits_type::eof())) return traits_type::not_eof(c);
    const char ch = traits_type::to_char_type(c);
    return Write(&ch, 1) ? c : traits_type::eof();
  }

 private:
  bool Write(const char* s, size_t n) {
    while (n > 0) {
      ssize_t w = ::write(STDOUT_FILENO, s, n);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        if (error_ == 0) error_ = w < 0 ? errno : EIO;
        return false;
      }
      s += w;
      n -= static_cast<size_t>(w);
    }
    return true;
  }
  int error_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  StdoutBuf buf;
  std::ostream out(&buf);
  int rc = guest_pull::tools::RunVerityCli(args, out, std::cerr);
  if (!out || buf.error() != 0) {
    // The results were lost: say why, or the exit status is all the
    // operator gets.
    std::cerr << "guest-pull-verity: cannot write to standard output: "
              << strerror(buf.error() != 0 ? buf.error() : EIO) << "\n";
    return guest_pull::tools::kExitRuntimeError;
  }
  return rc;
}
