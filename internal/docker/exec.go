package docker

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"
)

// ExecResult is what a command run in a container did.
type ExecResult struct {
	ExitCode       int
	Stdout, Stderr string
}

// Exec runs argv in the running container id of this node (as `docker exec` does, without a terminal) and
// returns its exit code and output once it has ended. An error means it could not be run; a command that
// failed is an ExecResult with a non-zero ExitCode. env (NAME=value) is added to the container's environment.
func (c *Client) Exec(ctx context.Context, id string, argv []string, env ...string) (ExecResult, error) {
	what := fmt.Sprintf("exec %q in container %s", strings.Join(argv, " "), ShortID(id))
	created, err := c.api.ContainerExecCreate(ctx, id, container.ExecOptions{Cmd: argv, Env: env, AttachStdout: true, AttachStderr: true})
	if err != nil {
		return ExecResult{}, fmt.Errorf("%s: %w", what, err)
	}
	att, err := c.api.ContainerExecAttach(ctx, created.ID, container.ExecAttachOptions{})
	if err != nil {
		return ExecResult{}, fmt.Errorf("%s: attach: %w", what, err)
	}
	defer att.Close()
	var out, errb bytes.Buffer
	done := make(chan error, 1)
	go func() { _, err := stdcopy.StdCopy(&out, &errb, att.Reader); done <- err }()
	select {
	case <-ctx.Done():
		return ExecResult{}, fmt.Errorf("%s: %w", what, ctx.Err())
	case err := <-done:
		if err != nil {
			return ExecResult{}, fmt.Errorf("%s: read output: %w", what, err)
		}
	}
	in, err := c.api.ContainerExecInspect(ctx, created.ID)
	if err != nil {
		return ExecResult{}, fmt.Errorf("%s: inspect: %w", what, err)
	}
	return ExecResult{ExitCode: in.ExitCode, Stdout: out.String(), Stderr: errb.String()}, nil
}

// ShortID is the 12-character form of a container, task or service ID, as the docker CLI shows it.
func ShortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
