package lock

import (
	"context"
	"fmt"
	"strconv"
	"sync"
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
	LabelFree     = labelPrefix + "free" // "true" on a released lock
)

// lockData is the config's content: Swarm wants some, and it tells whoever finds the object what it is.
const lockData = "ziti-bootstrap apply lock: its labels name the holder and the expiry. It is marked free when the run ends, " +
	"and expires by itself when the run dies. Remove it by hand (docker config rm " + Name + ") only if no apply is running.\n"

// SwarmAPI is what the Swarm lock needs of the Docker Engine; *docker.Client has it.
type SwarmAPI interface {
	CreateConfig(ctx context.Context, name string, data []byte, labels map[string]string) (string, error)
	InspectConfig(ctx context.Context, nameOrID string) (docker.LabelledConfig, error)
	UpdateConfigLabels(ctx context.Context, id, name string, version uint64, labels map[string]string) error
	RemoveConfig(ctx context.Context, id string) error
	EngineTime(ctx context.Context) (time.Time, error)
}

var _ SwarmAPI = (*docker.Client)(nil)

// Swarm is the lock held as the Swarm config name.
type Swarm struct {
	api   SwarmAPI
	name  string
	where string

	mu   sync.Mutex
	seen seenVersion // the version of the lock this store last saw held by another run, and when
}

// seenVersion is one version of the lock config as this process first saw it, timed by its monotonic clock.
type seenVersion struct {
	id      string
	version uint64
	at      time.Time
}

// NewSwarm returns the lock held in the Swarm as config name (Name unless a test needs its own); where names
// the engine for messages (its DOCKER_HOST).
func NewSwarm(api SwarmAPI, name, where string) *Swarm {
	return &Swarm{api: api, name: name, where: where}
}

func (s *Swarm) Where() string      { return fmt.Sprintf("Swarm config %q via %s", s.name, s.where) }
func (s *Swarm) Expires() bool      { return true }
func (s *Swarm) RemoveHint() string { return "docker config rm " + s.name }

// TryAcquire creates the config, or takes over one that is free (released), has expired, or whose holder is
// known to be dead, by replacing its labels at the version it read (compare-and-swap).
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
			continue // removed by hand meanwhile: create again
		}
		if err != nil {
			return Holder{}, s.classify(err)
		}
		h := holderOf(cur)
		if !isFree(cur) {
			if h.Run == me.Run {
				return me, nil // an earlier attempt of ours went through, its answer did not
			}
			expired, err := s.expired(ctx, cur, h)
			if err != nil {
				return Holder{}, s.classify(err)
			}
			if !expired && !h.Dead() {
				return h, fmt.Errorf("%w: %s", ErrHeld, h)
			}
		}
		if err := s.api.UpdateConfigLabels(ctx, cur.ID, s.name, cur.Version, labels(me)); err != nil {
			// Another run took it first (version out of sequence), or it was removed: look again.
			now, ierr := s.api.InspectConfig(ctx, s.name)
			switch {
			case docker.IsNotFound(ierr):
				continue
			case ierr != nil:
				return Holder{}, s.classify(ierr)
			}
			if nh := holderOf(now); nh.Run != me.Run {
				if now.Version == cur.Version {
					return Holder{}, s.classify(err) // not a race: the update itself failed
				}
				if isFree(now) {
					continue // taken and released meanwhile
				}
				return nh, fmt.Errorf("%w: %s (it took the lock first)", ErrHeld, nh)
			}
		}
		return me, nil
	}
	return Holder{}, fmt.Errorf("%s: changed by others three times in a row; try again", s.Where())
}

// expired reports whether the lock h (config cur) has gone unrenewed for its TTL. Only the Swarm's clocks
// count, never the holder's: either a manager stamped the config's last update (UpdatedAt) more than a TTL
// before the engine's present time, or this process has seen the same version unchanged for a TTL by its own
// monotonic clock. A holder whose clock is wrong therefore neither loses its lock early nor keeps it forever.
func (s *Swarm) expired(ctx context.Context, cur docker.LabelledConfig, h Holder) (bool, error) {
	s.mu.Lock()
	if s.seen.id != cur.ID || s.seen.version != cur.Version {
		s.seen = seenVersion{id: cur.ID, version: cur.Version, at: time.Now()}
	}
	watched := time.Since(s.seen.at)
	s.mu.Unlock()
	if watched > h.TTL {
		return true, nil
	}
	now, err := s.api.EngineTime(ctx)
	if err != nil {
		return false, err
	}
	return now.After(cur.UpdatedAt.Add(h.TTL)), nil
}

// Renew relabels the lock at the version read if it is still me's: the update itself, stamped by the Swarm
// (UpdatedAt, a new version), is what keeps it from expiring.
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

// Release marks the config free if it is still me's. Docker cannot delete a config on condition of its
// version, so a read-then-delete could delete the lock of a run that took it over in between; an update at
// the version read (compare-and-swap) cannot: it fails when the config changed since.
func (s *Swarm) Release(ctx context.Context, me Holder) error {
	cur, err := s.mine(ctx, me)
	if err != nil {
		return err
	}
	if err := s.api.UpdateConfigLabels(ctx, cur.ID, s.name, cur.Version, freeLabels()); err != nil {
		if now, ierr := s.api.InspectConfig(ctx, s.name); docker.IsNotFound(ierr) || (ierr == nil && holderOf(now).Run != me.Run) {
			return fmt.Errorf("%w: taken over before the release", ErrLost)
		}
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
	if h := holderOf(cur); isFree(cur) || h.Run != me.Run {
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

// freeLabels mark a released lock: the config stays (see Release), held by nobody.
func freeLabels() map[string]string { return map[string]string{LabelFree: "true"} }

// isFree reports whether the lock config c was released.
func isFree(c docker.LabelledConfig) bool { return c.Labels[LabelFree] == "true" }

// IsFree reports whether a lock config with these labels is released (held by no run).
func IsFree(labels map[string]string) bool { return labels[LabelFree] == "true" }

// holderOf reads the holder from the config's labels. Its TTL is the holder's (60 s for a config made by hand,
// or by something else); its expiry, for messages, is one TTL after the config's last update as the Swarm
// stamped it (the "expires" label is the holder's own estimate, for people reading the labels).
func holderOf(c docker.LabelledConfig) Holder {
	l := c.Labels
	h := Holder{Run: l[LabelRun], Host: l[LabelHost], Kernel: l[LabelKernel], PIDNS: l[LabelPIDNS], PIDStart: l[LabelPIDStart]}
	h.PID, _ = strconv.Atoi(l[LabelPID])
	h.Acquired, _ = time.Parse(time.RFC3339Nano, l[LabelAcquired])
	h.TTL, _ = time.ParseDuration(l[LabelTTL])
	if h.TTL <= 0 {
		h.TTL = 60 * time.Second
	}
	h.Expires = c.UpdatedAt.Add(h.TTL)
	return h
}
