package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/progress"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/redact"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/wait"
)

// Service stops and starts the server a target restores into. Stop returns once the server no longer runs (its
// files are closed); Start returns once it is back and ready.
//
// Implementations: ExecService (host-run servers: commands such as `systemctl stop spire-server`),
// ProcessService (a process this program may signal and start, e.g. the test bed's), SwarmService (a Docker Swarm
// service scaled to 0 and back), and Stopped (the operator stopped the server and will start it).
type Service interface {
	Stop(ctx context.Context) error
	Start(ctx context.Context) error
	String() string
}

// Stopped is a server the operator has stopped before the restore and starts after it: the documented
// equivalent for host-run servers without stop/start commands.
type Stopped struct{ Name string }

func (s Stopped) Stop(context.Context) error  { return nil }
func (s Stopped) Start(context.Context) error { return nil }
func (s Stopped) String() string              { return s.Name + " (stopped and started by the operator)" }

// ExecService runs a command to stop the server and one to start it (each argv; use sh -c for a shell line),
// then waits for Ready, when set.
type ExecService struct {
	Name         string
	StopCommand  []string
	StartCommand []string
	Ready        func(ctx context.Context) error
	ReadyTimeout time.Duration // default 2 minutes
}

func (s *ExecService) String() string {
	return fmt.Sprintf("%s (stop: %s; start: %s)", s.Name, strings.Join(s.StopCommand, " "), strings.Join(s.StartCommand, " "))
}

func (s *ExecService) Stop(ctx context.Context) error {
	return runCommand(ctx, "stop "+s.Name, s.StopCommand)
}

func (s *ExecService) Start(ctx context.Context) error {
	if err := runCommand(ctx, "start "+s.Name, s.StartCommand); err != nil {
		return err
	}
	return ready(ctx, s.Name, s.Ready, s.ReadyTimeout)
}

func runCommand(ctx context.Context, what string, argv []string) error {
	if len(argv) == 0 {
		return fmt.Errorf("%s: no command configured", what)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = redact.ChildEnv(os.Environ()) // a hook needs none of the configuration's secrets
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %s: %w: %s", what, strings.Join(argv, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}

func ready(ctx context.Context, name string, probe func(context.Context) error, timeout time.Duration) error {
	if probe == nil {
		return nil
	}
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	progress.Report(ctx, progress.Event{Stage: progress.Health, Detail: name})
	return wait.For(ctx, wait.Target{What: name, Where: "after restore", Deadline: timeout, Initial: 300 * time.Millisecond, Max: 2 * time.Second,
		Progress: func(what, _ string, attempt int, _ time.Duration, err error) {
			progress.Report(ctx, progress.Event{Stage: progress.Health, Detail: fmt.Sprintf("%s: attempt %d: %v", what, attempt, err)})
		}}, probe)
}

// ProcessService is a server process on this host that may be signalled: Stop sends SIGTERM to it (and its
// process group), waits for it to exit, then SIGKILL after StopTimeout; Start runs Command detached in its own
// session, logging to LogFile, and waits for Ready.
type ProcessService struct {
	Name    string
	PID     func() (int, error) // the running process, until Start has started one
	Command []string
	Dir     string
	Env     []string // added to this process's environment
	LogFile string   // "" discards the output
	Ready   func(ctx context.Context) error
	// ReadyTimeout defaults to 2 minutes, StopTimeout to 30 seconds.
	ReadyTimeout, StopTimeout time.Duration

	pid int // the process Start started
}

func (s *ProcessService) String() string {
	return fmt.Sprintf("%s (signal the process; start: %s)", s.Name, strings.Join(s.Command, " "))
}

// Current is the PID of the process that runs the server now (0 when unknown).
func (s *ProcessService) Current() int {
	if s.pid != 0 {
		return s.pid
	}
	if s.PID != nil {
		if p, err := s.PID(); err == nil {
			return p
		}
	}
	return 0
}

func (s *ProcessService) Stop(ctx context.Context) error {
	pid := s.pid
	if pid == 0 {
		if s.PID == nil {
			return fmt.Errorf("stop %s: no PID", s.Name)
		}
		var err error
		if pid, err = s.PID(); err != nil {
			return fmt.Errorf("stop %s: %w", s.Name, err)
		}
	}
	if !processAlive(pid) {
		return nil
	}
	grace := s.StopTimeout
	if grace <= 0 {
		grace = 30 * time.Second
	}
	signal(pid, syscall.SIGTERM)
	if gone, err := waitExit(ctx, pid, grace); gone || err != nil {
		return err
	}
	signal(pid, syscall.SIGKILL)
	if gone, err := waitExit(ctx, pid, 10*time.Second); gone || err != nil {
		return err
	}
	return fmt.Errorf("stop %s: process %d survives SIGKILL", s.Name, pid)
}

// signal sends sig to pid's process group and to pid.
func signal(pid int, sig syscall.Signal) {
	_ = syscall.Kill(-pid, sig)
	_ = syscall.Kill(pid, sig)
}

// waitExit waits up to d for pid to exit.
func waitExit(ctx context.Context, pid int, d time.Duration) (bool, error) {
	deadline := time.Now().Add(d)
	for processAlive(pid) {
		if time.Now().After(deadline) {
			return false, nil
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return true, nil
}

func (s *ProcessService) Start(ctx context.Context) error {
	if len(s.Command) == 0 {
		return fmt.Errorf("start %s: no command configured", s.Name)
	}
	cmd := exec.Command(s.Command[0], s.Command[1:]...)
	cmd.Dir = s.Dir
	cmd.Env = append(redact.ChildEnv(os.Environ()), s.Env...)
	if s.LogFile != "" {
		f, err := os.OpenFile(s.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("start %s: %w", s.Name, err)
		}
		defer f.Close()
		cmd.Stdout, cmd.Stderr = f, f
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.Name, err)
	}
	s.pid = cmd.Process.Pid
	go func() { _ = cmd.Wait() }() // reap it
	return ready(ctx, s.Name, s.Ready, s.ReadyTimeout)
}

// processAlive reports whether pid runs (a zombie does not).
func processAlive(pid int) bool {
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return !errors.Is(err, os.ErrNotExist)
	}
	// pid (comm) state ...: comm may hold spaces and parentheses; the state follows the last ')'.
	if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) {
		return b[i+2] != 'Z' && b[i+2] != 'X'
	}
	return true
}

// Scaler scales a Docker Swarm service and keeps a restore's journal in its labels: the part of a Docker client
// (internal/docker's) SwarmService needs. Scale returns once the service's tasks have reached the new count (all
// stopped, for 0).
type Scaler interface {
	Replicas(ctx context.Context, service string) (uint64, error)
	Scale(ctx context.Context, service string, replicas uint64) error
	ServiceLabels(ctx context.Context, service string) (map[string]string, error)
	// SetServiceLabels sets labels; an empty value removes the label.
	SetServiceLabels(ctx context.Context, service string, labels map[string]string) error
}

// The labels a restore journals on each Swarm service it restores (see SwarmService): written before anything is
// stopped, removed once the service runs again at its replica count.
const (
	LabelReplicas = "ziti-bootstrap.restore.replicas" // the replica count to bring the service back to
	LabelSet      = "ziti-bootstrap.restore.set"      // the set being restored
	LabelStage    = "ziti-bootstrap.restore.stage"    // recorded, stopped (scaled to 0, its data being replaced)
)

// SwarmService stops a replicated Swarm service by scaling it to 0, and starts it by scaling it back to the
// replica count it had. The count lives in the Swarm, not in memory: Record labels the service with it (and the
// set) before any service is stopped; Start scales back to the labelled count and removes the labels. A restore
// killed at any point thus leaves the count with the service, and Resume (run by the next restore, or by `up`
// through ResumeSwarm) brings it back. A stop that fails scales it back at once.
type SwarmService struct {
	Scaler  Scaler
	Service string
	Ready   func(ctx context.Context) error
	// ReadyTimeout defaults to 2 minutes.
	ReadyTimeout time.Duration
}

func (s *SwarmService) String() string {
	return fmt.Sprintf("Swarm service %s (scaled to 0 and back)", s.Service)
}

// Record journals the service's replica count and the set on the service, unless an interrupted restore's journal
// is there already (its count is the one to go back to: the service may be at 0 now).
func (s *SwarmService) Record(ctx context.Context, set string) error {
	labels, err := s.Scaler.ServiceLabels(ctx, s.Service)
	if err != nil {
		return err
	}
	if labels[LabelReplicas] != "" {
		return s.Scaler.SetServiceLabels(ctx, s.Service, map[string]string{LabelSet: set})
	}
	n, err := s.Scaler.Replicas(ctx, s.Service)
	if err != nil {
		return err // it names the service
	}
	if n == 0 {
		n = 1
	}
	return s.Scaler.SetServiceLabels(ctx, s.Service, map[string]string{LabelReplicas: strconv.FormatUint(n, 10), LabelSet: set, LabelStage: "recorded"})
}

// replicas is the count journalled on the service (Record), 1 when there is none.
func (s *SwarmService) replicas(ctx context.Context) (uint64, bool, error) {
	labels, err := s.Scaler.ServiceLabels(ctx, s.Service)
	if err != nil {
		return 0, false, err
	}
	v := labels[LabelReplicas]
	if v == "" {
		return 1, false, nil
	}
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil || n == 0 {
		return 0, true, fmt.Errorf("Swarm service %s: label %s=%q is not a replica count; set it to the service's count (docker service update --label-add %s=N %s)",
			s.Service, LabelReplicas, v, LabelReplicas, s.Service)
	}
	return n, true, nil
}

func (s *SwarmService) Stop(ctx context.Context) error {
	n, journalled, err := s.replicas(ctx)
	if err != nil {
		return err
	}
	if !journalled { // Stop without Record (a caller of its own): journal now, before stopping
		if err := s.Record(ctx, ""); err != nil {
			return err
		}
		if n, _, err = s.replicas(ctx); err != nil {
			return err
		}
	}
	if err := s.Scaler.SetServiceLabels(ctx, s.Service, map[string]string{LabelStage: "stopped"}); err != nil {
		return err
	}
	if err := s.Scaler.Scale(ctx, s.Service, 0); err != nil {
		// Its tasks did not all end (or the update failed): put it back as it was, never leave it half stopped.
		err = fmt.Errorf("scale Swarm service %s to 0: %w", s.Service, err)
		if berr := startAgain(ctx, s); berr != nil {
			return errors.Join(err, berr)
		}
		return fmt.Errorf("%w; scaled back to %d", err, n)
	}
	return nil
}

// Start scales the service back to its journalled count (1 if it has none), removes the journal, and waits until
// it is ready.
func (s *SwarmService) Start(ctx context.Context) error {
	journalled, err := s.Resume(ctx)
	if err != nil {
		return err
	}
	if !journalled {
		if err := s.Scaler.Scale(ctx, s.Service, 1); err != nil {
			return fmt.Errorf("scale Swarm service %s back to 1 (its replica count was not recorded): %w", s.Service, err)
		}
	}
	return ready(ctx, "Swarm service "+s.Service, s.Ready, s.ReadyTimeout)
}

// Resume scales a service an interrupted restore journalled back to its count and removes the journal; it
// reports whether there was one (without one it does nothing). It does not wait for readiness.
func (s *SwarmService) Resume(ctx context.Context) (bool, error) {
	n, journalled, err := s.replicas(ctx)
	if err != nil || !journalled {
		return journalled, err
	}
	if err := s.Scaler.Scale(ctx, s.Service, n); err != nil {
		return true, fmt.Errorf("scale Swarm service %s back to %d: %w", s.Service, n, err)
	}
	return true, s.Scaler.SetServiceLabels(ctx, s.Service, map[string]string{LabelReplicas: "", LabelSet: "", LabelStage: ""})
}

// Forget removes the journal of a service a restore recorded but never stopped (it stopped before reaching it).
func (s *SwarmService) Forget(ctx context.Context) error {
	labels, err := s.Scaler.ServiceLabels(ctx, s.Service)
	if err != nil || labels[LabelStage] != "recorded" {
		return err
	}
	return s.Scaler.SetServiceLabels(ctx, s.Service, map[string]string{LabelReplicas: "", LabelSet: "", LabelStage: ""})
}
