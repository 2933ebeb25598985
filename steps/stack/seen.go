package stack

import (
	"sync"

	"github.com/docker/docker/api/types/swarm"
)

// Seen keeps, for the steps of one run, each stack's services and their tasks as read by the check that found
// the stack converged with nothing written by its deploy step (a no-op): the job's report (Job) takes them from
// there rather than reading them again, when every stack it looks at is in it. A deploy that writes records
// nothing, so the report of a run that changed anything reads for itself. The zero value is not usable: NewSeen.
// A nil *Seen keeps nothing.
type Seen struct {
	mu     sync.Mutex
	stacks map[string]seenStack // by namespace
}

type seenStack struct {
	services []swarm.Service
	tasks    map[string][]swarm.Task // by service ID
}

// NewSeen returns an empty Seen.
func NewSeen() *Seen { return &Seen{stacks: map[string]seenStack{}} }

// put records the services of namespace ns and their tasks.
func (s *Seen) put(ns string, services []swarm.Service, tasks map[string][]swarm.Task) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stacks[ns] = seenStack{services: services, tasks: tasks}
}

// get returns the services of each namespace and the tasks of them all, or ok false unless every namespace was
// recorded.
func (s *Seen) get(namespaces []string) (byNamespace map[string][]swarm.Service, byService map[string][]swarm.Task, ok bool) {
	if s == nil {
		return nil, nil, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	byNamespace, byService = map[string][]swarm.Service{}, map[string][]swarm.Task{}
	for _, ns := range namespaces {
		st, found := s.stacks[ns]
		if !found {
			return nil, nil, false
		}
		byNamespace[ns] = st.services
		for id, ts := range st.tasks {
			byService[id] = ts
		}
	}
	return byNamespace, byService, true
}
