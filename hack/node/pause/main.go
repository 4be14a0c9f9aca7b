// pause: the pod sandbox's program on the test node (no registry is reachable here, so the node cannot pull
// registry.k8s.io/pause). It does what the real one does: sleeps until SIGTERM or SIGINT, and reaps the
// zombies of the pod's shared PID namespace while it is PID 1.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 4)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for s := range signals {
		if s != syscall.SIGCHLD {
			return
		}
		for {
			var status syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
