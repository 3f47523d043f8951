// What kind of file a stat(2) mode describes, for messages.
#ifndef BASE_FILE_TYPE_H_
#define BASE_FILE_TYPE_H_

#include <sys/types.h>

namespace base {

// "a regular file", "a directory", "a symlink", "a FIFO", "a device",
// "a socket"; "another kind of file" for any other mode.
const char* FileTypeName(mode_t mode);

}  // namespace base

#endif  // BASE_FILE_TYPE_H_
