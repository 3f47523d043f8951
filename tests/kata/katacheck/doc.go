// Package katacheck runs kata's own Go code (module
// github.com/kata-containers/kata-containers/src/runtime, taken from the Go
// module proxy at a release's pseudo-version) against what this project
// emits: the rootfs mount types of both modes and every volume the daemon's
// builder produces. tests/kata/kata_patch.sh runs it once per release (it
// rewrites the kata requirement with -modfile; go.mod pins the newest
// release the proxy serves), and again with the build tag kata_patched
// against the patched tree.
//
// Environment (set by the suite; defaults are the shipped values):
//
//	GUEST_PULL_VOLUMES       file of io.katacontainers.volume= options, one a line
//	GUEST_PULL_DEFAULT_TYPE  mount type of the patched (default) mode
//	GUEST_PULL_STOCK_TYPE    mount type of the stock-kata mode
package katacheck
