package docker

import (
	"bytes"
	"context"
	"fmt"
	"strconv"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"
)

// TaskLogs returns the last tail lines (all when tail <= 0) of a Swarm task's standard output and standard error,
// as `docker service logs` shows them. It reads only.
func (c *Client) TaskLogs(ctx context.Context, taskID string, tail int) (stdout, stderr string, err error) {
	opts := container.LogsOptions{ShowStdout: true, ShowStderr: true}
	if tail > 0 {
		opts.Tail = strconv.Itoa(tail)
	}
	rc, err := c.api.TaskLogs(ctx, taskID, opts)
	if err != nil {
		return "", "", fmt.Errorf("logs of task %s: %w", taskID, err)
	}
	defer rc.Close()
	var o, e bytes.Buffer
	if _, err := stdcopy.StdCopy(&o, &e, rc); err != nil {
		return o.String(), e.String(), fmt.Errorf("logs of task %s: %w", taskID, err)
	}
	return o.String(), e.String(), nil
}
