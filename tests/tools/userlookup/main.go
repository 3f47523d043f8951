// Command userlookup resolves a user by name in an image's rootfs the way
// containerd does on the host for a container with a named user (as CRI
// does for runAsUsername): it creates a container through containerd's
// client with oci.WithUsername, which temporarily mounts the container's
// rootfs snapshot and reads /etc/passwd, prints the resulting uid and gid,
// and deletes the container with its snapshot.
//
// Usage: userlookup -address SOCK -namespace NS -snapshotter NAME -image REF -user NAME
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/oci"
)

func main() {
	address := flag.String("address", "", "containerd socket")
	namespace := flag.String("namespace", "k8s.io", "containerd namespace")
	snapshotter := flag.String("snapshotter", "", "snapshotter of the image")
	image := flag.String("image", "", "image reference")
	user := flag.String("user", "", "user name to resolve")
	id := flag.String("id", fmt.Sprintf("userlookup-%d", os.Getpid()), "container id")
	timeout := flag.Duration("timeout", 60*time.Second, "overall time limit")
	flag.Parse()
	if *address == "" || *snapshotter == "" || *image == "" || *user == "" {
		fmt.Fprintln(os.Stderr, "usage: userlookup -address SOCK -snapshotter NAME -image REF -user NAME [-namespace NS]")
		os.Exit(2)
	}
	if err := run(*address, *namespace, *snapshotter, *image, *user, *id, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "userlookup:", err)
		os.Exit(1)
	}
}

func run(address, namespace, snapshotter, ref, user, id string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(namespaces.WithNamespace(context.Background(), namespace), timeout)
	defer cancel()
	client, err := containerd.New(address, containerd.WithTimeout(10*time.Second))
	if err != nil {
		return fmt.Errorf("connect %s: %w", address, err)
	}
	defer client.Close()
	image, err := client.GetImage(ctx, ref)
	if err != nil {
		return fmt.Errorf("image %s: %w", ref, err)
	}
	container, err := client.NewContainer(ctx, id,
		containerd.WithSnapshotter(snapshotter),
		containerd.WithNewSnapshot(id, image),
		containerd.WithNewSpec(oci.WithImageConfig(image), oci.WithUsername(user)))
	if err != nil {
		return fmt.Errorf("create container with user %q: %w", user, err)
	}
	defer container.Delete(context.Background(), containerd.WithSnapshotCleanup)
	spec, err := container.Spec(ctx)
	if err != nil {
		return fmt.Errorf("read spec: %w", err)
	}
	fmt.Printf("{\"uid\":%d,\"gid\":%d}\n", spec.Process.User.UID, spec.Process.User.GID)
	return nil
}
