// Early-return helpers for absl::Status and absl::StatusOr, the pair that
// protobuf and gRPC keep internally:
//
//   RETURN_IF_ERROR(store.Flush());
//   ASSIGN_OR_RETURN(Info info, GetInfo(tx, key));
//
// Both work in functions returning absl::Status or any absl::StatusOr<T>.
#ifndef BASE_STATUS_MACROS_H_
#define BASE_STATUS_MACROS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

// Evaluates `expr` (an absl::Status) once; returns it if it is not OK.
#define RETURN_IF_ERROR(expr)                           \
  do {                                                  \
    ::absl::Status base_status_macro_status = (expr);   \
    if (!base_status_macro_status.ok()) {               \
      return base_status_macro_status;                  \
    }                                                   \
  } while (false)

#define BASE_STATUS_MACROS_CONCAT_INNER(a, b) a##b
#define BASE_STATUS_MACROS_CONCAT(a, b) BASE_STATUS_MACROS_CONCAT_INNER(a, b)

// Evaluates `rexpr` (an absl::StatusOr<T>) once; returns its status if it is
// not OK, otherwise moves its value into `lhs` (a declaration or an lvalue).
#define ASSIGN_OR_RETURN(lhs, rexpr)                                     \
  BASE_ASSIGN_OR_RETURN_IMPL(                                            \
      BASE_STATUS_MACROS_CONCAT(base_status_macro_or_, __LINE__), lhs, rexpr)

#define BASE_ASSIGN_OR_RETURN_IMPL(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                               \
  if (!statusor.ok()) return std::move(statusor).status(); \
  lhs = *std::move(statusor)

#endif  // BASE_STATUS_MACROS_H_
