package katacheck

import "os"

func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

// The mount types of the two modes (docs/kata-runtime-patch.md).
var (
	defaultType = envOr("GUEST_PULL_DEFAULT_TYPE", "fuse.guest-pull-overlayfs")
	stockType   = envOr("GUEST_PULL_STOCK_TYPE", "fuse.nydus-overlayfs-guest-pull")
)
