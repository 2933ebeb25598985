// Package taskwatch watches the tasks of Swarm stacks: it reads them per stack, service and node (View), wakes its
// readers on the Docker events of the stack, and applies the fail-fast rule (Rule): a task error that will not heal
// — a port already bound on the node, an image the node does not have, a mount whose source does not exist, a
// placement no node satisfies — seen N times in a row stops the wait with the service, the cause and the fix,
// instead of waiting out the deadline. Other errors (a server that exits while its database starts) still wait.
// up's convergence waits, its live view and its fail-fast share this one package.
package taskwatch

import (
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/swarm"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/porthold"
)

// Cause is a kind of task error that waiting does not cure.
type Cause string

const (
	PortInUse      Cause = "port already in use"
	ImageMissing   Cause = "image missing"
	InvalidMount   Cause = "invalid mount"
	NoSuitableNode Cause = "placement rejected"
)

var (
	bindRe  = regexp.MustCompile(`(?:listen tcp[46]? |Bind for )(\S*):(\d+)(?::| failed)`)
	imageRe = regexp.MustCompile(`No such image: (\S+)|pull access denied for ([^,\s]+)|manifest (?:for (\S+) )?unknown`)
	mountRe = regexp.MustCompile(`invalid mount config[^:]*:\s*(.*)`)
)

// classify returns the cause of a task error and a key that is equal for the same error on another attempt (task
// and endpoint IDs differ from one attempt to the next); "" for an error that may heal.
func classify(msg string) (Cause, string) {
	switch {
	case strings.Contains(msg, "address already in use") || strings.Contains(msg, "port is already allocated"):
		if m := bindRe.FindStringSubmatch(msg); m != nil {
			return PortInUse, m[2]
		}
		return PortInUse, ""
	case imageRe.MatchString(msg):
		m := imageRe.FindStringSubmatch(msg)
		return ImageMissing, m[1] + m[2] + m[3]
	case mountRe.MatchString(msg):
		return InvalidMount, mountRe.FindStringSubmatch(msg)[1]
	case strings.Contains(msg, "no suitable node") && strings.Contains(msg, "constraints not satisfied"):
		return NoSuitableNode, ""
	}
	return "", ""
}

// Failure is a service whose tasks fail for a cause that will not heal.
type Failure struct {
	Service string
	Node    string // hostname (or ID) of the node where it failed
	Cause   Cause
	Times   int    // attempts in a row that failed so
	Err     string // the latest task's error
	Fix     string
}

func (f *Failure) Error() string {
	times := fmt.Sprintf("%d task(s) in a row", f.Times)
	if f.Cause == NoSuitableNode {
		times = fmt.Sprintf("pending for %d check(s)", f.Times)
	}
	return fmt.Sprintf("service %s cannot start: %s on node %s (%s: %s); fix: %s", f.Service, f.Cause, f.Node, times, f.Err, f.Fix)
}

// Rule is the fail-fast rule: N attempts in a row of one task slot (a node, for global services) failing with the
// same error of a Cause. A task held pending by placement constraints counts once per check and needs Grace too
// (a node may be on its way back). The zero Rule uses N=3 and Grace=30s. A Rule keeps state between checks; one
// Rule per wait.
type Rule struct {
	N     int
	Grace time.Duration
	// NodeName maps a node ID to its hostname for messages; nil keeps the ID.
	NodeName func(id string) string

	pending map[string]pendingSeen // task ID → when first seen held by placement, and how often
}

type pendingSeen struct {
	first time.Time
	times int
}

// Check applies the rule to the tasks of one service (those of its current spec) at now; nil when nothing is stuck.
func (r *Rule) Check(svc swarm.Service, tasks []swarm.Task, now time.Time) *Failure {
	n := r.N
	if n <= 0 {
		n = 3
	}
	grace := r.Grace
	if grace <= 0 {
		grace = 30 * time.Second
	}
	bySlot := map[string][]swarm.Task{}
	for _, t := range tasks {
		k := t.NodeID
		if t.Slot > 0 {
			k = strconv.Itoa(t.Slot)
		}
		bySlot[k] = append(bySlot[k], t)
	}
	keys := make([]string, 0, len(bySlot))
	for k := range bySlot {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	seenPending := map[string]pendingSeen{}
	defer func() { r.pending = seenPending }()
	var out *Failure
	for _, k := range keys {
		ts := bySlot[k]
		sort.Slice(ts, func(i, j int) bool { return ts[i].Status.Timestamp.After(ts[j].Status.Timestamp) })
		if f := r.placement(svc, ts[0], now, n, grace, seenPending); f != nil && out == nil {
			out = f
		}
		if f := r.streak(svc, ts, n); f != nil && out == nil {
			out = f
		}
	}
	return out
}

// streak counts the newest failed attempts of one slot (newest first) that share a Cause and key; the attempt
// under way, if any, is skipped.
func (r *Rule) streak(svc swarm.Service, ts []swarm.Task, n int) *Failure {
	var cause Cause
	var key, latest, node string
	count := 0
	for i, t := range ts {
		switch t.Status.State {
		case swarm.TaskStateFailed, swarm.TaskStateRejected:
		case swarm.TaskStateNew, swarm.TaskStatePending, swarm.TaskStateAssigned, swarm.TaskStateAccepted,
			swarm.TaskStatePreparing, swarm.TaskStateReady, swarm.TaskStateStarting:
			if i == 0 {
				continue // the next attempt, on its way
			}
			return nil
		default:
			return nil
		}
		c, k := classify(t.Status.Err)
		if c == "" || (count > 0 && (c != cause || k != key)) {
			break
		}
		if count == 0 {
			cause, key, latest, node = c, k, t.Status.Err, t.NodeID
		}
		count++
	}
	if count < n {
		return nil
	}
	return &Failure{Service: svc.Spec.Name, Node: r.node(node), Cause: cause, Times: count, Err: latest, Fix: fix(svc, cause, key, r.node(node))}
}

func (r *Rule) placement(svc swarm.Service, t swarm.Task, now time.Time, n int, grace time.Duration, seen map[string]pendingSeen) *Failure {
	msg := t.Status.Err
	if msg == "" {
		msg = t.Status.Message
	}
	if t.Status.State != swarm.TaskStatePending {
		return nil
	}
	if c, _ := classify(msg); c != NoSuitableNode {
		return nil
	}
	p, ok := r.pending[t.ID]
	if !ok {
		p.first = now
	}
	p.times++
	seen[t.ID] = p
	if p.times < n || now.Sub(p.first) < grace {
		return nil
	}
	return &Failure{Service: svc.Spec.Name, Node: "(none)", Cause: NoSuitableNode, Times: p.times, Err: msg, Fix: fix(svc, NoSuitableNode, "", "")}
}

func (r *Rule) node(id string) string {
	if r.NodeName != nil {
		if n := r.NodeName(id); n != "" {
			return n
		}
	}
	return id
}

// fix says what to do about cause; for a port held on this machine it names the process.
func fix(svc swarm.Service, cause Cause, key, node string) string {
	switch cause {
	case PortInUse:
		holder := ""
		if p, err := strconv.Atoi(key); err == nil {
			if h, _ := os.Hostname(); h == node {
				if d := porthold.Describe(p); d != "" {
					holder = " (held by " + d + ")"
				}
			}
		}
		return fmt.Sprintf("port %s is taken on node %s by something else%s: free it, or publish %s on another port (ZITI_CTRL_PUBLISHED_PORT, ZITI_ROUTER_PUBLISHED_PORT, KEYCLOAK_PUBLISHED_PORT; see the README's ports)",
			key, node, holder, svc.Spec.Name)
	case ImageMissing:
		return fmt.Sprintf("node %s does not have image %s and cannot pull it: load it there (docker save | docker load) or set the stack variable of that image to one the node has", node, key)
	case InvalidMount:
		return fmt.Sprintf("on node %s, %s: create the source there or change the mount", node, key)
	case NoSuitableNode:
		var cs []string
		if p := svc.Spec.TaskTemplate.Placement; p != nil {
			cs = p.Constraints
		}
		return fmt.Sprintf("no node satisfies the constraints %q: label a node (docker node update --label-add NAME=VALUE NODE) or change the constraint variable", cs)
	}
	return ""
}
