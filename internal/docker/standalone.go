package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/pkg/stdcopy"
)

// Standalone containers: plain containers of this engine's node, outside Swarm (a Swarm service cannot have what
// they need, such as the host PID namespace: moby/swarmkit#1605).

// ContainerSpec is a plain container to create.
type ContainerSpec struct {
	Name       string
	Image      string
	Entrypoint []string // nil: the image's
	Cmd        []string
	User       string // "uid:gid"; "" the image's
	Labels     map[string]string
	Network    string // "host", or the name of a network to join (an attachable overlay, a bridge); "" the default
	HostPID    bool   // share the host's PID namespace (--pid host)
	Restart    string // restart policy: "", "no", "always", "unless-stopped", "on-failure"
	Mounts     []Mount
	Health     *HealthCheck
}

// Mount is a named volume or a host path mounted into a container.
type Mount struct {
	Volume   bool   // true: Source names a volume; false: Source is a path on the node (a bind mount)
	Source   string // volume name or host path
	Target   string // path in the container
	ReadOnly bool
}

// HealthCheck is a container's Docker healthcheck: Test is run in the container (exec form, no shell).
type HealthCheck struct {
	Test                           []string
	Interval, Timeout, StartPeriod time.Duration
	Retries                        int
}

// ContainerInfo is a container as inspected.
type ContainerInfo struct {
	ID, Name string
	Image    string // the reference it was created from
	ImageID  string
	Labels   map[string]string
	Status   string // created, running, paused, restarting, removing, exited, dead
	Running  bool
	Pid      int // its main process on the node (0 when not running)
	ExitCode int
	Error    string // the engine's error when it could not start it
	// Health is "" when the container has no healthcheck, else starting, healthy or unhealthy; HealthOutput is the
	// output of the latest probe since it last started, trimmed.
	Health       string
	HealthOutput string
	HostPID      bool
	Mounts       []Mount // volumes by name, binds by host path
	RestartCount int
	StartedAt    time.Time
	FinishedAt   time.Time
}

// File is a file to copy into a container.
type File struct {
	Name string // base name
	Mode int64  // permission bits
	Data []byte
}

// InspectContainer returns the container named (or with ID) name; a missing one satisfies IsNotFound.
func (c *Client) InspectContainer(ctx context.Context, name string) (ContainerInfo, error) {
	k, err := c.api.ContainerInspect(ctx, name)
	if err != nil {
		return ContainerInfo{}, fmt.Errorf("inspect container %s: %w", name, err)
	}
	out := ContainerInfo{ID: k.ID, Name: strings.TrimPrefix(k.Name, "/"), ImageID: k.Image}
	if k.Config != nil {
		out.Image, out.Labels = k.Config.Image, k.Config.Labels
	}
	if k.HostConfig != nil {
		out.HostPID = k.HostConfig.PidMode.IsHost()
	}
	for _, m := range k.Mounts {
		mt := Mount{Volume: m.Type == mount.TypeVolume, Source: m.Source, Target: m.Destination, ReadOnly: !m.RW}
		if mt.Volume {
			mt.Source = m.Name
		}
		out.Mounts = append(out.Mounts, mt)
	}
	out.RestartCount = k.RestartCount
	if s := k.State; s != nil {
		out.Status, out.Running, out.Pid, out.ExitCode, out.Error = string(s.Status), s.Running, s.Pid, s.ExitCode, s.Error
		out.StartedAt, _ = time.Parse(time.RFC3339Nano, s.StartedAt)
		out.FinishedAt, _ = time.Parse(time.RFC3339Nano, s.FinishedAt)
		if h := s.Health; h != nil {
			out.Health = string(h.Status)
			// the log outlives a restart: only a probe of this run speaks for it
			if n := len(h.Log); n > 0 && h.Log[n-1] != nil && !h.Log[n-1].Start.Before(out.StartedAt) {
				out.HealthOutput = strings.TrimSpace(h.Log[n-1].Output)
			}
		}
	}
	return out, nil
}

// CreateContainer creates (does not start) a container and returns its ID. The image must be on the node.
func (c *Client) CreateContainer(ctx context.Context, s ContainerSpec) (string, error) {
	cfg := &container.Config{Image: s.Image, Entrypoint: s.Entrypoint, Cmd: s.Cmd, User: s.User, Labels: s.Labels}
	if h := s.Health; h != nil {
		cfg.Healthcheck = &container.HealthConfig{Test: append([]string{"CMD"}, h.Test...), Interval: h.Interval,
			Timeout: h.Timeout, StartPeriod: h.StartPeriod, Retries: h.Retries}
	}
	hc := &container.HostConfig{NetworkMode: container.NetworkMode(s.Network), RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyMode(s.Restart)}}
	if s.HostPID {
		hc.PidMode = "host"
	}
	for _, m := range s.Mounts {
		t := mount.TypeBind
		if m.Volume {
			t = mount.TypeVolume
		}
		hc.Mounts = append(hc.Mounts, mount.Mount{Type: t, Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly})
	}
	var nc *network.NetworkingConfig
	if s.Network != "" && !hc.NetworkMode.IsHost() && !hc.NetworkMode.IsNone() && !hc.NetworkMode.IsDefault() {
		nc = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{s.Network: {}}}
	}
	resp, err := c.api.ContainerCreate(ctx, cfg, hc, nc, nil, s.Name)
	if err != nil {
		return "", fmt.Errorf("create container %s: %w", s.Name, err)
	}
	return resp.ID, nil
}

// CopyFiles writes files into directory dir of container id (created or running), owned by root, as
// `docker cp` does; missing parent directories are created. No file's content appears in an error.
func (c *Client) CopyFiles(ctx context.Context, id, dir string, files []File) error {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	rel := strings.TrimPrefix(path.Clean(dir), "/")
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: path.Join(rel, f.Name), Mode: f.Mode, Size: int64(len(f.Data)),
			Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}); err != nil {
			return fmt.Errorf("copy %s into container %s: %w", f.Name, ShortID(id), err)
		}
		if _, err := tw.Write(f.Data); err != nil {
			return fmt.Errorf("copy %s into container %s: %w", f.Name, ShortID(id), err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("copy files into container %s: %w", ShortID(id), err)
	}
	if err := c.api.CopyToContainer(ctx, id, "/", &buf, container.CopyToContainerOptions{}); err != nil {
		return fmt.Errorf("copy %d file(s) into %s of container %s: %w", len(files), dir, ShortID(id), err)
	}
	return nil
}

// StartContainer starts a created or stopped container.
func (c *Client) StartContainer(ctx context.Context, id string) error {
	if err := c.api.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
		return fmt.Errorf("start container %s: %w", ShortID(id), err)
	}
	return nil
}

// UnpauseContainer resumes a paused container.
func (c *Client) UnpauseContainer(ctx context.Context, id string) error {
	if err := c.api.ContainerUnpause(ctx, id); err != nil {
		return fmt.Errorf("unpause container %s: %w", ShortID(id), err)
	}
	return nil
}

// StopContainer stops a container (SIGTERM, then SIGKILL after grace). A stopped container's restart policy
// does not start it again (until the engine restarts, for "always").
func (c *Client) StopContainer(ctx context.Context, id string, grace time.Duration) error {
	secs := int(grace / time.Second)
	if err := c.api.ContainerStop(ctx, id, container.StopOptions{Timeout: &secs}); err != nil {
		return fmt.Errorf("stop container %s: %w", ShortID(id), err)
	}
	return nil
}

// KillContainer sends SIGKILL to a running container's main process; its restart policy applies.
func (c *Client) KillContainer(ctx context.Context, id string) error {
	if err := c.api.ContainerKill(ctx, id, "KILL"); err != nil {
		return fmt.Errorf("kill container %s: %w", ShortID(id), err)
	}
	return nil
}

// ForceRemoveContainer removes a container, killing it first if it runs (docker rm -f). Named volumes stay.
func (c *Client) ForceRemoveContainer(ctx context.Context, id string) error {
	if err := c.api.ContainerRemove(ctx, id, container.RemoveOptions{Force: true}); err != nil {
		return fmt.Errorf("remove container %s: %w", ShortID(id), err)
	}
	return nil
}

// WaitContainer waits until container id is not running and returns its exit code.
func (c *Client) WaitContainer(ctx context.Context, id string) (int, error) {
	ok, errs := c.api.ContainerWait(ctx, id, container.WaitConditionNotRunning)
	select {
	case r := <-ok:
		if r.Error != nil {
			return int(r.StatusCode), fmt.Errorf("wait for container %s: %s", ShortID(id), r.Error.Message)
		}
		return int(r.StatusCode), nil
	case err := <-errs:
		return -1, fmt.Errorf("wait for container %s: %w", ShortID(id), err)
	}
}

// ContainerLogs returns all of a container's standard output and standard error.
func (c *Client) ContainerLogs(ctx context.Context, id string) (stdout, stderr string, err error) {
	rc, err := c.api.ContainerLogs(ctx, id, container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		return "", "", fmt.Errorf("logs of container %s: %w", ShortID(id), err)
	}
	defer rc.Close()
	var o, e bytes.Buffer
	if _, err := stdcopy.StdCopy(&o, &e, io.LimitReader(rc, 16<<20)); err != nil {
		return o.String(), e.String(), fmt.Errorf("logs of container %s: %w", ShortID(id), err)
	}
	return o.String(), e.String(), nil
}
