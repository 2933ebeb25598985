package lock

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/docker/docker/errdefs"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/docker"
)

// memEngine is a Swarm's config store in memory, for fault injection: versions and compare-and-swap as Swarm
// has them, its own clock (now) stamping every update, and hooks that run another run's calls at the worst
// moment.
type memEngine struct {
	mu      sync.Mutex
	now     time.Time // the managers' clock
	configs map[string]*docker.LabelledConfig
	nextID  int
	// afterInspect, when set, runs (once) after an InspectConfig answered, before the caller acts on it.
	afterInspect func()
}

func newMemEngine() *memEngine {
	return &memEngine{now: time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC), configs: map[string]*docker.LabelledConfig{}}
}

func (e *memEngine) advance(d time.Duration) {
	e.mu.Lock()
	e.now = e.now.Add(d)
	e.mu.Unlock()
}

func (e *memEngine) CreateConfig(_ context.Context, name string, _ []byte, labels map[string]string) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.configs[name]; ok {
		return "", errdefs.Conflict(fmt.Errorf("config %s already exists", name))
	}
	e.nextID++
	c := &docker.LabelledConfig{ID: fmt.Sprint("id", e.nextID), Name: name, Version: uint64(e.nextID * 10), Labels: copyLabels(labels), CreatedAt: e.now, UpdatedAt: e.now}
	e.configs[name] = c
	return c.ID, nil
}

func (e *memEngine) InspectConfig(_ context.Context, name string) (docker.LabelledConfig, error) {
	e.mu.Lock()
	c, ok := e.configs[name]
	var out docker.LabelledConfig
	if ok {
		out = *c
		out.Labels = copyLabels(c.Labels)
	}
	hook := e.afterInspect
	e.afterInspect = nil
	e.mu.Unlock()
	if !ok {
		return out, errdefs.NotFound(fmt.Errorf("config %s not found", name))
	}
	if hook != nil {
		hook()
	}
	return out, nil
}

func (e *memEngine) UpdateConfigLabels(_ context.Context, id, name string, version uint64, labels map[string]string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, ok := e.configs[name]
	if !ok || c.ID != id {
		return errdefs.NotFound(fmt.Errorf("config %s not found", id))
	}
	if c.Version != version {
		return errors.New("update out of sequence")
	}
	c.Version++
	c.Labels = copyLabels(labels)
	c.UpdatedAt = e.now
	return nil
}

func (e *memEngine) RemoveConfig(_ context.Context, id string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for n, c := range e.configs {
		if c.ID == id {
			delete(e.configs, n)
			return nil
		}
	}
	return errdefs.NotFound(fmt.Errorf("config %s not found", id))
}

func (e *memEngine) EngineTime(context.Context) (time.Time, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.now, nil
}

func copyLabels(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
