package agentlauncher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/docker"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/wait"
)

// Engine is what the launcher needs of its node's Docker Engine.
type Engine interface {
	ImageID(ctx context.Context, ref string) (string, error)
	PullImage(ctx context.Context, ref string) error
	InspectVolume(ctx context.Context, name string) (docker.Volume, error)
	CreateVolume(ctx context.Context, name string, labels map[string]string) error
	InspectContainer(ctx context.Context, name string) (docker.ContainerInfo, error)
	CreateContainer(ctx context.Context, s docker.ContainerSpec) (string, error)
	CopyFiles(ctx context.Context, id, dir string, files []docker.File) error
	StartContainer(ctx context.Context, id string) error
	UnpauseContainer(ctx context.Context, id string) error
	StopContainer(ctx context.Context, id string, grace time.Duration) error
	ForceRemoveContainer(ctx context.Context, id string) error
	ContainerEvents(ctx context.Context, name string, actions ...string) (<-chan docker.ContainerEvent, <-chan error)
}

var _ Engine = (*docker.Client)(nil)

// StopGrace is how long a replaced agent gets to stop after SIGTERM.
const StopGrace = 10 * time.Second

// Action is what an ensure does to the agent container.
type Action string

const (
	NoOp     Action = "none"     // it runs the current spec (or the engine is restarting it)
	Create   Action = "create"   // it is missing
	Recreate Action = "recreate" // its spec changed, or it cannot be started as it is: remove, then create
	Start    Action = "start"    // it is stopped
	Unpause  Action = "unpause"  // it is paused
)

// Plan is what an ensure will do, and why.
type Plan struct {
	Action Action
	Reason string
	// ID is the existing container's (empty for Create).
	ID string
	// Changed names the parts of the spec that differ (Recreate of an outdated container).
	Changed []string
}

// ErrNotOwned says a container has the agent's name but is not the launcher's: it is never changed.
var ErrNotOwned = errors.New("not created by the agent launcher")

// Decide plans the ensure of the agent container from what the engine reported (cur; nil when it does not exist)
// and what is desired. It is pure.
func Decide(cur *docker.ContainerInfo, d Desired, namespace string) (Plan, error) {
	if cur == nil {
		return Plan{Action: Create, Reason: "no container " + d.Spec.Name}, nil
	}
	if cur.Labels[LabelRole] != RoleAgent || cur.Labels[docker.NamespaceLabel] != namespace {
		return Plan{}, fmt.Errorf("container %s (%s) is %w (labels %s=%q, %s=%q): remove or rename it, or choose another %s",
			cur.Name, docker.ShortID(cur.ID), ErrNotOwned, LabelRole, cur.Labels[LabelRole], docker.NamespaceLabel,
			cur.Labels[docker.NamespaceLabel], EnvContainer)
	}
	p := Plan{ID: cur.ID, Changed: d.Changed(cur.Labels)}
	switch {
	case len(p.Changed) > 0:
		p.Action, p.Reason = Recreate, "changed: "+strings.Join(p.Changed, ", ")
	case cur.Status == "created":
		// The launcher starts what it creates at once: a container never started was left by an interrupted
		// ensure, perhaps before its files were copied.
		p.Action, p.Reason = Recreate, "never started: left by an interrupted ensure"
	case cur.Status == "dead":
		p.Action, p.Reason = Recreate, "dead"
	case cur.Status == "exited":
		p.Action, p.Reason = Start, fmt.Sprintf("exited with code %d", cur.ExitCode)
	case cur.Status == "paused":
		p.Action, p.Reason = Unpause, "paused"
	case cur.Status == "restarting":
		p.Action, p.Reason = NoOp, "the engine is restarting it (restart policy unless-stopped)"
	default: // running, removing
		p.Action, p.Reason = NoOp, cur.Status
	}
	return p, nil
}

// Launcher keeps one agent container running on its node.
type Launcher struct {
	Engine   Engine
	Settings Settings
	Log      *slog.Logger
	// sleep waits d or until ctx ends (time-based by default; tests replace it).
	sleep func(ctx context.Context, d time.Duration) error
}

// New returns a launcher for s on engine e.
func New(e Engine, s Settings, log *slog.Logger) *Launcher {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Launcher{Engine: e, Settings: s, Log: log, sleep: wait.Sleep}
}

// Result is what one ensure found and did.
type Result struct {
	Plan
	ContainerID string // the agent container after the ensure
}

// Desire reads the files and the image's ID on the node and returns the desired container. pull says whether a
// missing image may be pulled (a write); without it a missing image is an error.
func (l *Launcher) Desire(ctx context.Context, pull bool) (Desired, error) {
	files, err := ReadFiles(l.Settings.FilesDir)
	if err != nil {
		return Desired{}, err
	}
	id, err := l.Engine.ImageID(ctx, l.Settings.Image)
	if docker.IsNotFound(err) && pull {
		l.Log.Info("pulling the agent image: it is not on this node", "image", l.Settings.Image)
		if perr := l.Engine.PullImage(ctx, l.Settings.Image); perr != nil {
			return Desired{}, fmt.Errorf("agent image %s is not on this node and could not be pulled (load it with docker load, or make its registry reachable): %w", l.Settings.Image, perr)
		}
		id, err = l.Engine.ImageID(ctx, l.Settings.Image)
	}
	if err != nil {
		return Desired{}, fmt.Errorf("agent image: %w", err)
	}
	return Desire(l.Settings, id, files), nil
}

// Observe returns the agent container, or nil when there is none.
func (l *Launcher) Observe(ctx context.Context) (*docker.ContainerInfo, error) {
	cur, err := l.Engine.InspectContainer(ctx, l.Settings.Container)
	if docker.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &cur, nil
}

// Ensure makes the agent container exist, run and match the current spec. When it does already, it makes no
// mutating call.
func (l *Launcher) Ensure(ctx context.Context) (Result, error) {
	d, err := l.Desire(ctx, true)
	if err != nil {
		return Result{}, err
	}
	cur, err := l.Observe(ctx)
	if err != nil {
		return Result{}, err
	}
	p, err := Decide(cur, d, l.Settings.Namespace)
	if err != nil {
		return Result{Plan: p}, err
	}
	res := Result{Plan: p, ContainerID: p.ID}
	what := fmt.Sprintf("agent container %s", l.Settings.Container)
	switch p.Action {
	case NoOp:
		return res, nil
	case Start:
		return res, l.Engine.StartContainer(ctx, p.ID)
	case Unpause:
		return res, l.Engine.UnpauseContainer(ctx, p.ID)
	case Recreate:
		if err := l.Engine.StopContainer(ctx, p.ID, StopGrace); err != nil && !docker.IsNotFound(err) {
			return res, fmt.Errorf("replace %s: %w", what, err)
		}
		if err := l.Engine.ForceRemoveContainer(ctx, p.ID); err != nil && !docker.IsNotFound(err) {
			return res, fmt.Errorf("replace %s: %w", what, err)
		}
	}
	res.ContainerID, err = l.create(ctx, d)
	return res, err
}

// create makes the volumes (when missing), the container, copies the files in and starts it. A container that
// could not be completed is removed, so none is left half made.
func (l *Launcher) create(ctx context.Context, d Desired) (string, error) {
	labels := l.Settings.volumeLabels()
	for _, v := range []string{l.Settings.SocketVolume, l.Settings.DataVolume, l.Settings.ProxyVolume} {
		_, err := l.Engine.InspectVolume(ctx, v)
		if docker.IsNotFound(err) {
			err = l.Engine.CreateVolume(ctx, v, labels)
		}
		if err != nil {
			return "", err
		}
	}
	id, err := l.Engine.CreateContainer(ctx, d.Spec)
	if err != nil {
		return "", err
	}
	if err = l.Engine.CopyFiles(ctx, id, ConfigDir, d.Files); err == nil {
		err = l.Engine.StartContainer(ctx, id)
	}
	if err != nil {
		// a fresh context: ctx may be what ended
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if rerr := l.Engine.ForceRemoveContainer(rctx, id); rerr != nil {
			err = errors.Join(err, fmt.Errorf("and removing the incomplete container: %w", rerr))
		}
		return "", err
	}
	return id, nil
}
