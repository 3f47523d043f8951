package main

import (
	"fmt"
	"os"

	"github.com/containerd/containerd/pkg/shutdown"
	"github.com/containerd/containerd/plugin"
	"github.com/containerd/containerd/runtime/v2/runc/task"
	"github.com/containerd/containerd/runtime/v2/shim"
)

// registerTaskPlugin registers the ttrpc task service: containerd 1.7's runc
// task service wrapped by kataService, which intercepts Create.
func registerTaskPlugin() {
	plugin.Register(&plugin.Registration{
		Type:     plugin.TTRPCPlugin,
		ID:       "task",
		Requires: []plugin.Type{plugin.EventPlugin, plugin.InternalPlugin},
		InitFn: func(ic *plugin.InitContext) (interface{}, error) {
			pp, err := ic.GetByID(plugin.EventPlugin, "publisher")
			if err != nil {
				return nil, err
			}
			ss, err := ic.GetByID(plugin.InternalPlugin, "shutdown")
			if err != nil {
				return nil, err
			}
			inner, err := task.NewTaskService(ic.Context, pp.(shim.Publisher), ss.(shutdown.Service))
			if err != nil {
				return nil, err
			}
			log := newDecisionLog()
			guest, err := newGuest(log)
			if err != nil {
				return nil, err
			}
			return newKataService(inner, log, guest), nil
		},
	})
}

// newGuest: GUEST_PULL_SHIM_GUEST chooses in-process ("local", the default)
// or a real VM per container ("vm").
func newGuest(log *decisionLog) (Guest, error) {
	local := newLocalGuest(log)
	switch mode := os.Getenv("GUEST_PULL_SHIM_GUEST"); mode {
	case "", "local":
		return local, nil
	case "vm":
		return newVMGuest(log, local)
	default:
		return nil, fmt.Errorf("GUEST_PULL_SHIM_GUEST=%q: want local or vm", mode)
	}
}
