package sockproxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/docker/docker/api/types/swarm"
)

// Backup is the scheduled backup service's policy: the Engine's facts, the apply lock (the config lockName, taken
// for every snapshot set), and what `restore --swarm` (run inside the service) does to the servers it stops while
// it restores their data, the Swarm services named services: read them, change their replica count and their
// labels whose keys start with labelPrefix (the restore's journal: backup.LabelReplicas, …) and nothing else of
// their spec, list their tasks, and find the services carrying such a label (an interrupted restore). No other
// service, no container, secret, network or volume.
func Backup(lockName string, services []string, labelPrefix string) Policy {
	names := strings.Join(services, ", ")
	return Policy{Name: "backup", Rules: slices.Concat(engineFacts, lockRules(lockName), []Rule{
		{Method: http.MethodGet, Path: regexp.MustCompile(`^/services/([^/]+)$`), Check: serviceNamed(services), What: "read the servers' services (" + names + ")"},
		{Method: http.MethodPost, Path: regexp.MustCompile(`^/services/([^/]+)/update$`), Check: both(serviceNamed(services), onlyReplicasAndLabels(labelPrefix)),
			What: "scale them and label them (" + labelPrefix + "*): nothing else of their spec"},
		{Method: http.MethodGet, Path: regexp.MustCompile(`^/tasks$`), Check: tasksOf(services), What: "list their tasks (filter service=…)"},
		{Method: http.MethodGet, Path: regexp.MustCompile(`^/services$`), Check: labelledOnly(labelPrefix), What: "list the services labelled " + labelPrefix + "* (filter label=… only)"},
	})}
}

// serviceNamed accepts a call on a service (by name or ID) whose name, as the Engine has it, is one of names.
func serviceNamed(names []string) func(context.Context, *Call) error {
	return func(ctx context.Context, c *Call) error {
		if slices.Contains(names, c.Object) {
			return nil
		}
		_, err := allowedService(ctx, c, names, c.Object)
		return err
	}
}

func allowedService(ctx context.Context, c *Call, names []string, nameOrID string) (swarm.Service, error) {
	var s swarm.Service
	if err := c.Engine(ctx, "/services/"+nameOrID, &s); err != nil {
		return s, fmt.Errorf("service %s: %v", nameOrID, err)
	}
	if !slices.Contains(names, s.Spec.Name) {
		return s, fmt.Errorf("service %s is %q, not one of %s", nameOrID, s.Spec.Name, strings.Join(names, ", "))
	}
	return s, nil
}

// onlyReplicasAndLabels accepts a service update whose spec (the body) is the service's current spec but for the
// replica count of a replicated service and labels whose keys start with prefix: no image, command, mount,
// network, other label or mode change.
func onlyReplicasAndLabels(prefix string) func(context.Context, *Call) error {
	return func(ctx context.Context, c *Call) error { return onlyReplicasAnd(ctx, c, prefix) }
}

func onlyReplicasAnd(ctx context.Context, c *Call, prefix string) error {
	var want, have swarm.Service
	if err := json.Unmarshal(c.Body, &want.Spec); err != nil {
		return fmt.Errorf("the spec is not JSON: %v", err)
	}
	if err := c.Engine(ctx, "/services/"+c.Object, &have); err != nil {
		return fmt.Errorf("service %s: %v", c.Object, err)
	}
	if want.Spec.Mode.Replicated == nil || have.Spec.Mode.Replicated == nil || want.Spec.Mode.Global != nil || want.Spec.Mode.ReplicatedJob != nil || want.Spec.Mode.GlobalJob != nil {
		return errors.New("only the replica count of a replicated service may change")
	}
	want.Spec.Mode, have.Spec.Mode = swarm.ServiceMode{}, swarm.ServiceMode{}
	want.Spec.Labels, have.Spec.Labels = withoutPrefix(want.Spec.Labels, prefix), withoutPrefix(have.Spec.Labels, prefix)
	a, err := json.Marshal(want.Spec)
	if err != nil {
		return err
	}
	b, err := json.Marshal(have.Spec)
	if err != nil {
		return err
	}
	if string(a) != string(b) {
		return errors.New("the update changes more of the spec than the replica count and the " + prefix + "* labels")
	}
	return nil
}

// objectName is a Swarm object's name or ID.
var objectName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// tasksOf accepts a task list filtered by service, for services of names only.
func tasksOf(names []string) func(context.Context, *Call) error {
	return func(ctx context.Context, c *Call) error {
		var f map[string]map[string]bool
		if err := json.Unmarshal([]byte(c.Query.Get("filters")), &f); err != nil || len(f) != 1 || len(f["service"]) == 0 {
			return errors.New("only a task list filtered by service (filters={\"service\":…}) is allowed")
		}
		for s := range f["service"] {
			if slices.Contains(names, s) {
				continue
			}
			if !objectName.MatchString(s) {
				return fmt.Errorf("filter service=%q is not a service name or ID", s)
			}
			if _, err := allowedService(ctx, c, names, s); err != nil {
				return err
			}
		}
		return nil
	}
}

// withoutPrefix returns labels without the keys that start with prefix (nil when none is left).
func withoutPrefix(labels map[string]string, prefix string) map[string]string {
	var out map[string]string
	for k, v := range labels {
		if strings.HasPrefix(k, prefix) {
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		out[k] = v
	}
	return out
}

// labelledOnly accepts a service list filtered by labels whose keys start with prefix, and by nothing else.
func labelledOnly(prefix string) func(context.Context, *Call) error {
	return func(_ context.Context, c *Call) error {
		var f map[string]map[string]bool
		if err := json.Unmarshal([]byte(c.Query.Get("filters")), &f); err != nil || len(f) != 1 || len(f["label"]) == 0 {
			return errors.New("only a service list filtered by label (filters={\"label\":…}) is allowed")
		}
		for l := range f["label"] {
			if k, _, _ := strings.Cut(l, "="); !strings.HasPrefix(k, prefix) {
				return fmt.Errorf("filter label=%q: only labels %s* are allowed", l, prefix)
			}
		}
		return nil
	}
}
