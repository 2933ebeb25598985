package testbed

import (
	"context"
	"os/exec"
	"strings"
	"time"
)

// StartDocker starts dockerd (Debian's docker.io) unless one answers already, and makes it a single-node Swarm
// manager advertising 127.0.0.1.
func StartDocker(ctx context.Context, dir string) (DockerInfo, error) {
	in := DockerInfo{Host: "unix:///var/run/docker.sock"}
	if _, err := run(ctx, nil, "docker", "info", "--format", "{{.ServerVersion}}"); err != nil {
		bin, lerr := exec.LookPath("dockerd")
		if lerr != nil {
			return in, lerr
		}
		p, err := start("dockerd", dir, bin, nil)
		if err != nil {
			return in, err
		}
		in.PID = p.pid
		if err := p.healthy(ctx, in.Host, 2*time.Minute, func(ctx context.Context) error {
			_, err := run(ctx, nil, "docker", "info", "--format", "{{.ServerVersion}}")
			return err
		}); err != nil {
			return in, err
		}
	}
	state, err := run(ctx, nil, "docker", "info", "--format", "{{.Swarm.LocalNodeState}}")
	if err != nil {
		return in, err
	}
	if strings.TrimSpace(state) != "active" {
		if _, err := run(ctx, nil, "docker", "swarm", "init", "--advertise-addr", "127.0.0.1"); err != nil {
			return in, err
		}
	}
	return in, nil
}
