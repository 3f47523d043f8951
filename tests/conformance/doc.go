// Package conformance runs containerd's snapshotter conformance suite
// (snapshots/testsuite) against a proxy snapshotter that serves the
// containerd.services.snapshots.v1 API on the unix socket named by the
// GUEST_PULL_SOCKET environment variable. See run.sh.
package conformance
