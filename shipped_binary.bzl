"""Link options shared by the binaries shipped to nodes."""

# Debian's abseil, protobuf, gRPC (with upb, c-ares, address_sorting,
# OpenSSL), RE2 and SQLite, linked from their static archives (the -dev
# packages ship them). Each of these shared libraries is built with
# BIND_NOW, so the dynamic loader resolved every one of their symbols at
# each start, most of the daemon's start before main (docs/benchmarks.md,
# "Session 4"). One group, so the archives' order does not matter; only the
# members used are linked. A new abseil library the code needs goes here
# too (else it links shared beside the static ones; tests/deploy/bundle.sh
# fails then).
_STATIC_ARCHIVES = [
    "grpc++",
    "grpc",
    "gpr",
    "upb",
    "cares",
    "address_sorting",
    "protobuf",
    "re2",
    "sqlite3",
    "ssl",
    "crypto",
] + ["absl_" + name for name in [
    "bad_any_cast_impl", "bad_optional_access", "bad_variant_access", "base",
    "city", "civil_time", "cord", "cord_internal", "cordz_functions",
    "cordz_handle", "cordz_info", "cordz_sample_token", "debugging_internal",
    "demangle_internal", "examine_stack", "exponential_biased",
    "flags_commandlineflag", "flags_commandlineflag_internal", "flags_config",
    "flags_internal", "flags_marshalling", "flags_parse",
    "flags_private_handle_accessor", "flags_program_name", "flags_reflection",
    "flags_usage", "flags_usage_internal", "graphcycles_internal", "hash",
    "hashtablez_sampler", "int128", "log_severity", "low_level_hash",
    "malloc_internal", "random_distributions", "random_internal_platform",
    "random_internal_pool_urbg", "random_internal_randen",
    "random_internal_randen_hwaes", "random_internal_randen_hwaes_impl",
    "random_internal_randen_slow", "random_internal_seed_material",
    "random_seed_gen_exception", "random_seed_sequences", "raw_hash_set",
    "raw_logging_internal", "spinlock_wait", "stacktrace", "status",
    "statusor", "str_format_internal", "strerror", "strings",
    "strings_internal", "symbolize", "synchronization", "throw_delegate",
    "time", "time_zone",
]]

# A shipped binary's own link options come before its dependencies' on the
# link line: the group resolves every symbol of those libraries first, and
# --as-needed then keeps the dependencies' -lgrpc, -labsl_* ... from being
# loaded at all. The rest (glog, toml++, prometheus-cpp, libsystemd,
# libstdc++, glibc) stays shared.
#
# Shipped binaries look for those shared libraries first in
# <prefix>/lib/containerd-guest-pull-grpc next to <prefix>/bin, where the
# DaemonSet installs the Debian 12 libraries they were built against; a node
# without that directory uses its system libraries as usual.
SHIPPED_BINARY_LINKOPTS = [
    "-Wl,--start-group",
] + ["-l:lib%s.a" % name for name in _STATIC_ARCHIVES] + [
    "-Wl,--end-group",
    # Their symbols stay inside the binary (not in its dynamic symbol table,
    # which the shared libraries on the line would otherwise pull in).
    "-Wl,--exclude-libs,ALL",
    "-Wl,--as-needed",
    "-lz",
    "-ldl",
    "-pthread",
    "-Wl,-rpath,$$ORIGIN/../lib/containerd-guest-pull-grpc",
    "-Wl,--disable-new-dtags",
]
