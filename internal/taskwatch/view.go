package taskwatch

import (
	"sort"
	"time"

	"github.com/docker/docker/api/types/swarm"
)

// Stack is what one check of a stack's convergence saw, for a live view.
type Stack struct {
	Namespace string
	Step      string    // the step waiting, e.g. stack/keycloak
	Since     time.Time // when the wait started
	Services  []Service
	Done      bool // every service converged
}

// Service is one service of a Stack.
type Service struct {
	Name      string
	Job       bool
	Running   int // running (healthy, where a health check exists); for a job: completed
	Desired   int
	Starting  int // tasks started, waiting for their health check
	Converged bool
	Problem   string
	Nodes     []NodeTasks
}

// NodeTasks counts one service's tasks on one node.
type NodeTasks struct {
	Node     string
	Running  int
	Starting int
	Failed   int // attempts of the current spec that failed there
}

// Tally counts tasks (those of a service's current spec) per node; nodeName maps IDs to hostnames (nil: IDs).
func Tally(tasks []swarm.Task, nodeName func(string) string) (perNode []NodeTasks, starting int) {
	by := map[string]*NodeTasks{}
	for _, t := range tasks {
		if t.NodeID == "" {
			continue
		}
		n := by[t.NodeID]
		if n == nil {
			name := t.NodeID
			if nodeName != nil && nodeName(t.NodeID) != "" {
				name = nodeName(t.NodeID)
			}
			n = &NodeTasks{Node: name}
			by[t.NodeID] = n
		}
		switch {
		case t.Status.State == swarm.TaskStateRunning && t.DesiredState == swarm.TaskStateRunning:
			n.Running++
		case t.Status.State == swarm.TaskStateComplete:
			n.Running++
		case t.Status.State == swarm.TaskStateStarting:
			n.Starting++
			starting++
		case t.Status.State == swarm.TaskStateFailed || t.Status.State == swarm.TaskStateRejected:
			n.Failed++
		}
	}
	for _, n := range by {
		perNode = append(perNode, *n)
	}
	sort.Slice(perNode, func(i, j int) bool { return perNode[i].Node < perNode[j].Node })
	return perNode, starting
}
