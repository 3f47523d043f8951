// Logging of per-request lines.
//
// glog formats a LOG(INFO) line (time, time zone, thread, file) before it
// checks the level, so a line the level filters still costs about as much
// as one written. Lines written per RPC use REQUEST_LOG_INFO instead: when
// the level filters INFO, nothing is built at all.
#ifndef BASE_REQUEST_LOG_H_
#define BASE_REQUEST_LOG_H_

#include "glog/logging.h"

#define REQUEST_LOG_INFO LOG_IF(INFO, FLAGS_minloglevel <= google::GLOG_INFO)

#endif  // BASE_REQUEST_LOG_H_
