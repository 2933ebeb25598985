package lock

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/docker/docker/errdefs"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/docker"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/wait"
)

// Labels of the lock's Swarm config.
const (
	labelPrefix   = "ziti-bootstrap.lock."
	LabelRun      = labelPrefix + "run"
	LabelHost     = labelPrefix + "host"
	LabelPID      = labelPrefix + "pid"
	LabelAcquired = labelPrefix + "acquired"
	LabelExpires  = labelPrefix + "expires"
	LabelTTL      = labelPrefix + "ttl"
	LabelKernel   = labelPrefix + "kernel"
	LabelPIDNS    = labelPrefix + "pidns"
	LabelPIDStart = labelPrefix + "pid-start"
)

// lockData is the config's content: Swarm wants some, and it tells whoever finds the object what it is.
const lockData = "ziti-bootstrap apply lock: its labels name the holder and the expiry. It is removed when the run ends, " +
	"and expires by itself when the run dies. Remove it by hand (docker config rm " + Name + ") only if no apply is running.\n"

// SwarmAPI is what the Swarm lock needs of the Docker Engine; *docker.Client has it.
type SwarmAPI interface {
	CreateConfig(ctx context.Context, name string, data []byte, labels map[string]string) (string, error)
	InspectConfig(ctx context.Context, nameOrID string) (docker.LabelledConfig, error)
	UpdateConfigLabels(ctx context.Context, id, name string, version uint64, labels map[string]string) error
	RemoveConfig(ctx context.Context, id string) error
}

var _ SwarmAPI = (*docker.Client)(nil)

// Swarm is the lock held as the Swarm config name.
type Swarm struct {
	api   SwarmAPI
	name  string
	where string
}

// NewSwarm returns the lock held in the Swarm as config name (Name unless a test needs its own); where names
// the engine for messages (its DOCKER_HOST).
func NewSwarm(api SwarmAPI, name, where string) *Swarm {
	return &Swarm{api: api, name: name, where: where}
}

func (s *Swarm) Where() string      { return fmt.Sprintf("Swarm config %q via %s", s.name, s.where) }
func (s *Swarm) Expires() bool      { return true }
func (s *Swarm) RemoveHint() string { return "docker config rm " + s.name }

// TryAcquire creates the config; when it exists, it takes over a lock that has expired or whose holder is
// known to be dead, by replacing the labels at the version it read (compare-and-swap).
func (s *Swarm) TryAcquire(ctx context.Context, me Holder) (Holder, error) {
	for attempt := 0; attempt < 3; attempt++ { // the config may vanish between a failed create and the inspect
		_, err := s.api.CreateConfig(ctx, s.name, []byte(lockData), labels(me))
		if err == nil {
			return me, nil
		}
		if !docker.IsConflict(err) {
			return Holder{}, s.classify(err)
		}
		cur, err := s.api.InspectConfig(ctx, s.name)
		if docker.IsNotFound(err) {
			continue // released meanwhile: create again
		}
		if err != nil {
			return Holder{}, s.classify(err)
		}
		h := holderOf(cur)
		if h.Run == me.Run {
			return me, nil // an earlier attempt of ours went through, its answer did not
		}
		if !h.Expired(time.Now()) && !h.Dead() {
			return h, fmt.Errorf("%w: %s", ErrHeld, h)
		}
		if err := s.api.UpdateConfigLabels(ctx, cur.ID, s.name, cur.Version, labels(me)); err != nil {
			// Another run took it over first (version out of sequence), or it was removed: look again.
			now, ierr := s.api.InspectConfig(ctx, s.name)
			switch {
			case docker.IsNotFound(ierr):
				continue
			case ierr != nil:
				return Holder{}, s.classify(ierr)
			}
			if nh := holderOf(now); nh.Run != me.Run {
				if nh.Run == h.Run {
					return Holder{}, s.classify(err) // not a race: the update itself failed
				}
				return nh, fmt.Errorf("%w: %s (it took the expired lock over first)", ErrHeld, nh)
			}
		}
		return me, nil
	}
	return Holder{}, fmt.Errorf("%s: created and removed by others three times in a row; try again", s.Where())
}

// Renew replaces the labels with me's (new expiry) if the lock is still me's, at the version read.
func (s *Swarm) Renew(ctx context.Context, me Holder) error {
	cur, err := s.mine(ctx, me)
	if err != nil {
		return err
	}
	if err := s.api.UpdateConfigLabels(ctx, cur.ID, s.name, cur.Version, labels(me)); err != nil {
		if now, ierr := s.api.InspectConfig(ctx, s.name); ierr == nil && holderOf(now).Run != me.Run {
			return fmt.Errorf("%w: now held by %s", ErrLost, holderOf(now))
		}
		return err
	}
	return nil
}

// Release removes the config if it is still me's.
func (s *Swarm) Release(ctx context.Context, me Holder) error {
	cur, err := s.mine(ctx, me)
	if err != nil {
		return err
	}
	if err := s.api.RemoveConfig(ctx, cur.ID); err != nil && !docker.IsNotFound(err) {
		return err
	}
	return nil
}

// mine reads the config and checks that it is still me's (ErrLost if not).
func (s *Swarm) mine(ctx context.Context, me Holder) (docker.LabelledConfig, error) {
	cur, err := s.api.InspectConfig(ctx, s.name)
	if docker.IsNotFound(err) {
		return cur, fmt.Errorf("%w: the config was removed", ErrLost)
	}
	if err != nil {
		return cur, err
	}
	if h := holderOf(cur); h.Run != me.Run {
		return cur, fmt.Errorf("%w: now held by %s", ErrLost, h)
	}
	return cur, nil
}

// classify marks the engine's refusals that waiting cannot cure (not a Swarm manager: 503) as permanent; they
// satisfy errors.Is(err, docker.ErrNotManager).
func (s *Swarm) classify(err error) error {
	if errdefs.IsUnavailable(err) {
		return wait.Permanent(fmt.Errorf("%s: %w: %w (the lock needs a Swarm manager: point DOCKER_HOST at one, or set ZB_DOCKER=false for a single-host file lock)",
			s.Where(), docker.ErrNotManager, err))
	}
	return err
}

func labels(h Holder) map[string]string {
	return map[string]string{
		LabelRun: h.Run, LabelHost: h.Host, LabelPID: strconv.Itoa(h.PID),
		LabelAcquired: h.Acquired.UTC().Format(time.RFC3339Nano), LabelExpires: h.Expires.UTC().Format(time.RFC3339Nano),
		LabelTTL: h.TTL.String(), LabelKernel: h.Kernel, LabelPIDNS: h.PIDNS, LabelPIDStart: h.PIDStart,
	}
}

// holderOf reads the holder from the config's labels. A config without a readable expiry (made by hand, or by
// something else) expires one TTL (default 60 s) after its last update, as seen by the Swarm.
func holderOf(c docker.LabelledConfig) Holder {
	l := c.Labels
	h := Holder{Run: l[LabelRun], Host: l[LabelHost], Kernel: l[LabelKernel], PIDNS: l[LabelPIDNS], PIDStart: l[LabelPIDStart]}
	h.PID, _ = strconv.Atoi(l[LabelPID])
	h.Acquired, _ = time.Parse(time.RFC3339Nano, l[LabelAcquired])
	h.TTL, _ = time.ParseDuration(l[LabelTTL])
	exp, err := time.Parse(time.RFC3339Nano, l[LabelExpires])
	if err != nil || exp.IsZero() {
		ttl := h.TTL
		if ttl <= 0 {
			ttl = 60 * time.Second
		}
		exp = c.UpdatedAt.Add(ttl)
	}
	h.Expires = exp
	return h
}
