"""cc_grpc_proto: protoc + grpc_cpp_plugin from Debian, wrapped as a cc_library.

Bazel 4.2.3's proto rules would fetch protobuf sources; this macro calls the
system protoc instead. Paths are relative to the calling package, so generated
headers are included as e.g. "containerd/types/mount.pb.h".
"""

def cc_grpc_proto(name, srcs, deps = [], proto_deps = [], grpc = True, visibility = None):
    """Generates C++ (and optionally gRPC) code for srcs.

    Args:
      name: name of the resulting cc_library.
      srcs: .proto files in this package (paths relative to it).
      deps: cc_library targets of imported protos.
      proto_deps: .proto files of those imports, in this package (the genrule's
        sandbox needs them).
      grpc: also run grpc_cpp_plugin.
      visibility: of the cc_library.
    """
    outs = []
    for src in srcs:
        base = src[:-len(".proto")]
        outs += [base + ".pb.h", base + ".pb.cc"]
        if grpc:
            outs += [base + ".grpc.pb.h", base + ".grpc.pb.cc"]
    pkg = native.package_name()
    plugin = ""
    if grpc:
        plugin = " --grpc_out=$(GENDIR)/" + pkg + " --plugin=protoc-gen-grpc=/usr/bin/grpc_cpp_plugin"
    native.genrule(
        name = name + "_gen",
        srcs = srcs + proto_deps,
        outs = outs,
        cmd = "/usr/bin/protoc --proto_path=" + pkg + " --proto_path=/usr/include" +
              " --cpp_out=$(GENDIR)/" + pkg + plugin + " " +
              " ".join(["$(location %s)" % s for s in srcs]),
    )
    native.cc_library(
        name = name,
        srcs = [o for o in outs if o.endswith(".cc")],
        hdrs = [o for o in outs if o.endswith(".h")],
        includes = ["."],
        deps = deps + ["//third_party/system:protobuf"] +
               (["//third_party/system:grpc"] if grpc else []),
        visibility = visibility,
    )
