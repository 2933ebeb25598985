// Package stack provides the steps that deploy ziti-bootstrap's Swarm stacks ("stack/spire",
// "stack/keycloak", "stack/openziti") and remove them ("down/…"), in the manner of `docker stack deploy` and
// `docker stack rm`, through the Docker Engine API.
//
// A deploy step observes the stack's objects (listed by their com.docker.stack.namespace label), compares them
// with the stack file converted by package stacks, and plans the creates, updates and deletes of networks,
// secrets, configs and services. Apply carries out exactly that plan in docker stack's order — networks,
// secrets, configs, services; then the deletes: services, secrets, configs, networks — and waits until every
// task runs (and is healthy where a health check exists) or every job completed. A stack whose objects match
// the file is not touched: a re-run makes no mutating call. Only objects with the stack's label are ever
// updated or deleted.
//
// Secrets and configs are immutable in Swarm: their names carry a hash of their data (for a secret a slow,
// salted one: see stacks.dataHash), so changed data is a new object, the services that use it are updated to the new name, and the old one is deleted once unused.
package stack

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/swarm"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/docker"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/taskwatch"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/wait"
	"github.com/ziti-bootstrap/ziti-bootstrap/stacks"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
)

// Engine is what the steps need from the Docker Engine; *docker.Client implements it.
type Engine interface {
	Networks(ctx context.Context, namespace string) ([]docker.Network, error)
	CreateNetwork(ctx context.Context, s docker.NetworkSpec) (string, error)
	RemoveNetwork(ctx context.Context, id string) error
	Secrets(ctx context.Context, namespace string) ([]docker.Object, error)
	CreateSecret(ctx context.Context, name string, data []byte, labels map[string]string) (string, error)
	RemoveSecret(ctx context.Context, id string) error
	Configs(ctx context.Context, namespace string) ([]docker.Object, error)
	CreateConfig(ctx context.Context, name string, data []byte, labels map[string]string) (string, error)
	RemoveConfig(ctx context.Context, id string) error
	Services(ctx context.Context, namespace string) ([]swarm.Service, error)
	CreateService(ctx context.Context, spec swarm.ServiceSpec) (string, []string, error)
	UpdateService(ctx context.Context, id string, version uint64, spec swarm.ServiceSpec) ([]string, error)
	RemoveService(ctx context.Context, id string) error
	Tasks(ctx context.Context, serviceIDs ...string) ([]swarm.Task, error)
	Volumes(ctx context.Context, namespace string) ([]docker.Volume, error)
	RemoveVolume(ctx context.Context, name string) error
}

var _ Engine = (*docker.Client)(nil)

// Change kinds in plans.
const (
	KindNetwork = "swarm-network"
	KindSecret  = "swarm-secret"
	KindConfig  = "swarm-config"
	KindService = "swarm-service"
	KindVolume  = "swarm-volume"
)

// Config is what the steps share.
type Config struct {
	// Engine returns the Docker client (built without a call; the step this one depends on, docker/reachable,
	// checks that it reaches the engine).
	Engine func() Engine
	// Timeout bounds the wait for convergence after a deploy (default 5 minutes).
	Timeout time.Duration
	// Progress is told about every unsuccessful convergence check.
	Progress wait.Progress
	// Watch, when set, is told what every convergence check saw (a live view draws it).
	Watch func(taskwatch.Stack)
	// Seen, when set, is shared by the run's deploy and job steps: a stack found converged without a write is
	// recorded there, and the job's report reads no stack recorded again.
	Seen *Seen
	// FailFastAfter is N of the fail-fast rule (taskwatch.Rule): a task error that will not heal, seen on N
	// attempts in a row, stops the wait; 0 means 3.
	FailFastAfter int
	// Rerun names job services (compose keys, e.g. "bootstrap") to run again although their spec is unchanged.
	Rerun []string
	// AfterWrites, when set, runs when a deploy that started a job (created or updated a job service) has made
	// every one of its writes, removals included, before it waits for convergence: up hands its lock over to
	// the bootstrap job there. The job, started a moment earlier, waits for the lock until then, so that it and
	// up never write at once.
	AfterWrites func(ctx context.Context) error
}

func (c Config) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return 5 * time.Minute
}

// StepName is the name of the deploy step of stack name, e.g. "stack/spire".
func StepName(name string) string { return "stack/" + name }

// Deploy is the step that deploys one stack.
type Deploy struct {
	cfg   Config
	stack *stacks.Stack
	deps  []string
	graph *Graph      // the stacks deployed with this one (NewGraph), or nil
	own   *stackGates // this stack's moments, for the graph's other steps; nil unless one of the graph's stacks
}

// New returns the deploy step of st, run after the steps deps.
func New(cfg Config, st *stacks.Stack, deps ...string) *Deploy {
	return &Deploy{cfg: cfg, stack: st, deps: deps}
}

// Steps returns one deploy step per stack, each started once what it needs is there (see Graph; all after first,
// e.g. "docker/reachable").
func Steps(cfg Config, first string, sts ...*stacks.Stack) []steps.Step {
	return NewGraph(cfg, first, sts...).Steps(nil)
}

func (d *Deploy) Name() string        { return StepName(d.stack.Name) }
func (d *Deploy) DependsOn() []string { return d.deps }

func (d *Deploy) engine() (Engine, error) {
	if d.cfg.Engine == nil {
		return nil, errors.New("no Docker client: the step docker/reachable must run first")
	}
	return d.cfg.Engine(), nil // built without a call before any step; docker/reachable checked it answers
}

// observed is the live state of one stack.
type observed struct {
	allNetworks []docker.Network // every network: external ones, and IDs to names
	networks    []docker.Network // ours
	secrets     []docker.Object
	configs     []docker.Object
	services    []swarm.Service
}

// observe reads the stack's networks, secrets, configs and services, at once (independent reads: a round trip
// instead of four).
func observe(ctx context.Context, e Engine, ns string) (*observed, error) {
	var (
		o                                    observed
		netErr, secretErr, configErr, svcErr error
		wg                                   sync.WaitGroup
	)
	wg.Go(func() { o.allNetworks, netErr = e.Networks(ctx, "") })
	wg.Go(func() { o.secrets, secretErr = e.Secrets(ctx, ns) })
	wg.Go(func() { o.configs, configErr = e.Configs(ctx, ns) })
	wg.Go(func() { o.services, svcErr = e.Services(ctx, ns) })
	wg.Wait()
	if err := cmp.Or(netErr, secretErr, configErr, svcErr); err != nil {
		return nil, err
	}
	for _, n := range o.allNetworks {
		if n.Labels[docker.NamespaceLabel] == ns {
			o.networks = append(o.networks, n)
		}
	}
	return &o, nil
}

func (o *observed) netName(id string) string {
	for _, n := range o.allNetworks {
		if n.ID == id {
			return n.Name
		}
	}
	return id
}

// plan is what Apply does, computed by Plan.
type plan struct {
	createNetworks []stacks.Network
	createSecrets  []stacks.Object
	createConfigs  []stacks.Object
	createServices []stacks.Service
	updateServices []serviceUpdate
	removeServices []swarm.Service
	removeSecrets  []docker.Object
	removeConfigs  []docker.Object
	removeNetworks []docker.Network
	// existing IDs by name, for the references of services
	secretIDs, configIDs map[string]string
}

type serviceUpdate struct {
	live  swarm.Service
	want  stacks.Service
	force bool // bump the force-update counter: a job runs again (Config.Rerun)
}

// withoutLateSeeds drops from st the seeds (stacks.AddSeedConfig) of services that run without them: a seed
// serves a server's first start only, so adding one to a running service (deployed by docker stack deploy, or by
// a ziti-bootstrap before the seed) would restart the server for a file it ignores.
func withoutLateSeeds(st *stacks.Stack, live []swarm.Service) *stacks.Stack {
	return st.WithoutSeeds(func(s stacks.Seed) bool {
		svc := findService(live, s.Service)
		return svc != nil && svc.Spec.TaskTemplate.ContainerSpec != nil && !slices.ContainsFunc(svc.Spec.TaskTemplate.ContainerSpec.Configs, func(r *swarm.ConfigReference) bool {
			return r.ConfigName == s.Config
		})
	})
}

// diff compares the stack with what is observed; it is pure.
func diff(st *stacks.Stack, o *observed) (*plan, []steps.Change, []string, error) {
	p := &plan{secretIDs: map[string]string{}, configIDs: map[string]string{}}
	var changes []steps.Change
	var notes []string
	var problems []string
	// deletes come last, in the order apply makes them: services, secrets, configs, networks
	dels := map[string][]steps.Change{}
	add := func(a steps.Action, kind, key, reason string, diff ...steps.FieldChange) {
		c := steps.Change{Action: a, Kind: kind, Key: key, Reason: reason}.WithDiff(diff)
		if a == steps.Delete {
			dels[kind] = append(dels[kind], c)
			return
		}
		changes = append(changes, c)
	}

	// networks
	wantNet := map[string]bool{}
	for _, n := range st.Networks {
		wantNet[n.Name] = true
		live := findNetwork(o.allNetworks, n.Name)
		switch {
		case n.External && live == nil:
			problems = append(problems, fmt.Sprintf("external network %s (networks.%s) does not exist: deploy the stack that owns it first, or create it", n.Name, n.Key))
		case n.External:
		case live == nil:
			p.createNetworks = append(p.createNetworks, n)
			add(steps.Create, KindNetwork, n.Name, "missing")
		case live.Labels[docker.NamespaceLabel] != st.Namespace:
			problems = append(problems, fmt.Sprintf("network %s exists but does not belong to stack %s (label %s=%q): remove or rename it",
				n.Name, st.Namespace, docker.NamespaceLabel, live.Labels[docker.NamespaceLabel]))
		case live.Driver != n.Driver || live.Attachable != n.Attachable || live.Internal != n.Internal:
			notes = append(notes, fmt.Sprintf("network %s differs from the stack file (driver %s, attachable %v, internal %v) and networks cannot be changed in place: run down and up to recreate it",
				n.Name, live.Driver, live.Attachable, live.Internal))
		}
	}
	for _, n := range o.networks {
		if !wantNet[n.Name] {
			p.removeNetworks = append(p.removeNetworks, n)
			add(steps.Delete, KindNetwork, n.Name, "not in the stack file")
		}
	}

	// secrets and configs: immutable, named by content
	objects := func(kind string, want []stacks.Object, live []docker.Object, ids map[string]string) (create []stacks.Object, remove []docker.Object) {
		wantName := map[string]bool{}
		for _, w := range want {
			wantName[w.Name] = true
		}
		for _, l := range live {
			ids[l.Name] = l.ID
		}
		for _, w := range want {
			if _, ok := ids[w.Name]; ok {
				continue
			}
			create = append(create, w)
			var old []string
			for _, l := range live {
				if l.Labels[stacks.LabelKey] == w.Key && !wantName[l.Name] {
					old = append(old, l.Name)
				}
			}
			reason := "missing"
			if len(old) > 0 {
				reason = "data changed; replaces " + strings.Join(old, ", ")
			}
			add(steps.Create, kind, w.Name, reason)
		}
		for _, l := range live {
			if !wantName[l.Name] {
				remove = append(remove, l)
				reason := "not in the stack file"
				for _, w := range want {
					if l.Labels[stacks.LabelKey] == w.Key {
						reason = "superseded by " + w.Name
					}
				}
				add(steps.Delete, kind, l.Name, reason)
			}
		}
		return create, remove
	}
	p.createSecrets, p.removeSecrets = objects(KindSecret, st.Secrets, o.secrets, p.secretIDs)
	p.createConfigs, p.removeConfigs = objects(KindConfig, st.Configs, o.configs, p.configIDs)

	// services
	wantSvc := map[string]bool{}
	for _, s := range st.Services {
		wantSvc[s.Spec.Name] = true
		live := findService(o.services, s.Spec.Name)
		if live == nil {
			p.createServices = append(p.createServices, s)
			add(steps.Create, KindService, s.Spec.Name, "missing; image "+s.Spec.TaskTemplate.ContainerSpec.Image+", "+modeString(s.Spec.Mode))
			continue
		}
		diffs := Compare(&live.Spec, &s.Spec, o.netName)
		if len(diffs) == 0 {
			continue
		}
		if modeKind(live.Spec.Mode) != modeKind(s.Spec.Mode) {
			problems = append(problems, fmt.Sprintf("service %s: mode %s cannot change to %s in place: run down and up", s.Spec.Name,
				modeString(live.Spec.Mode), modeString(s.Spec.Mode)))
			continue
		}
		var (
			fields  steps.Diff
			details []string
		)
		for _, d := range diffs {
			fields.Add(true, d.Field, d.Before, d.After)
			details = append(details, d.Detail)
		}
		p.updateServices = append(p.updateServices, serviceUpdate{live: *live, want: s})
		add(steps.Update, KindService, s.Spec.Name, strings.Join(details, "; "), fields...)
	}
	for _, s := range o.services {
		if !wantSvc[s.Spec.Name] {
			p.removeServices = append(p.removeServices, s)
			add(steps.Delete, KindService, s.Spec.Name, "not in the stack file")
		}
	}
	if len(problems) > 0 {
		return nil, nil, nil, fmt.Errorf("stack %s: %s", st.Namespace, strings.Join(problems, "; "))
	}
	for _, k := range []string{KindService, KindSecret, KindConfig, KindNetwork} {
		changes = append(changes, dels[k]...)
	}
	return p, changes, notes, nil
}

func findNetwork(ns []docker.Network, name string) *docker.Network {
	for i := range ns {
		if ns[i].Name == name {
			return &ns[i]
		}
	}
	return nil
}

func findService(ss []swarm.Service, name string) *swarm.Service {
	for i := range ss {
		if ss[i].Spec.Name == name {
			return &ss[i]
		}
	}
	return nil
}

// Plan observes the stack and returns what Apply would change. With nothing to change, it waits until the
// stack has converged (the gate of the stacks that need it), reading only. In a Graph, it first waits until the
// networks of the graph's other stacks that it joins exist.
func (d *Deploy) Plan(ctx context.Context) (pl *steps.Plan, err error) {
	if d.own != nil {
		defer func() {
			switch {
			case err != nil:
				d.own.written.close(nil) // those waiting for its objects see for themselves what exists
				d.own.done.close(err)
			case pl.Empty() || steps.ModeOf(ctx) == steps.PlanOnly:
				d.own.written.close(nil) // nothing will be written
				d.own.done.close(nil)
			}
		}()
	}
	if d.graph != nil {
		if err := d.graph.awaitNetworks(ctx, d.stack); err != nil {
			return nil, err
		}
	}
	e, err := d.engine()
	if err != nil {
		return nil, err
	}
	o, err := observe(ctx, e, d.stack.Namespace)
	if err != nil {
		return nil, err
	}
	p, changes, notes, err := diff(withoutLateSeeds(d.stack, o.services), o)
	if err != nil {
		return nil, err
	}
	changes = append(changes, d.reruns(p, o)...)
	if len(changes) == 0 {
		t0 := time.Now()
		if err := d.converge(ctx, e, o.services); err != nil {
			return nil, err
		}
		pl = steps.NewPlan(nil, nil).Note("stack %s (%s): %d service(s) converged in %s", d.stack.Namespace, d.stack.File,
			len(d.stack.Services), time.Since(t0).Round(time.Millisecond))
	} else {
		pl = steps.NewPlan(changes, func(ctx context.Context) error {
			err := d.apply(ctx, e, p)
			if d.own != nil {
				d.own.written.close(nil)
				d.own.done.close(err)
			}
			return err
		})
	}
	return pl.AddNotes(notes...), nil
}

// reruns adds to p the jobs of Config.Rerun that no other change starts again, as updates of their force-update
// counter, and returns their changes.
func (d *Deploy) reruns(p *plan, o *observed) []steps.Change {
	var out []steps.Change
	for _, key := range d.cfg.Rerun {
		name := d.stack.Namespace + "_" + key
		var want *stacks.Service
		for i := range d.stack.Services {
			if d.stack.Services[i].Spec.Name == name {
				want = &d.stack.Services[i]
			}
		}
		live := findService(o.services, name)
		if want == nil || live == nil || (want.Spec.Mode.ReplicatedJob == nil && want.Spec.Mode.GlobalJob == nil) {
			continue // not a job of this stack, or created (and so run) anyway
		}
		if slices.ContainsFunc(p.updateServices, func(u serviceUpdate) bool { return u.live.ID == live.ID }) {
			continue // its spec changed: the update runs it again
		}
		p.updateServices = append(p.updateServices, serviceUpdate{live: *live, want: *want, force: true})
		f := live.Spec.TaskTemplate.ForceUpdate
		out = append(out, steps.Change{Action: steps.Update, Kind: KindService, Key: name, Reason: "run the job again (asked for)"}.WithDiff(
			steps.Diff{{Field: "forceUpdate", Before: f, After: f + 1}}))
	}
	return out
}

// afterWrites runs Config.AfterWrites when p starts a job.
func (d *Deploy) afterWrites(ctx context.Context, p *plan) error {
	if d.cfg.AfterWrites == nil || !d.startsJob(p) {
		return nil
	}
	return d.cfg.AfterWrites(ctx)
}

// startsJob reports whether p creates or updates a job service (which starts it).
func (d *Deploy) startsJob(p *plan) bool {
	return slices.ContainsFunc(p.createServices, func(s stacks.Service) bool { return s.Job() }) ||
		slices.ContainsFunc(p.updateServices, func(u serviceUpdate) bool { return u.want.Job() })
}

// apply carries out p in docker stack's order, then waits for convergence.
func (d *Deploy) apply(ctx context.Context, e Engine, p *plan) error {
	for _, n := range p.createNetworks {
		if _, err := e.CreateNetwork(ctx, docker.NetworkSpec{Name: n.Name, Driver: n.Driver, Labels: n.Labels, Options: n.Options,
			Attachable: n.Attachable, Internal: n.Internal}); err != nil {
			return err
		}
	}
	for _, s := range p.createSecrets {
		id, err := e.CreateSecret(ctx, s.Name, s.Data, s.Labels)
		if err != nil {
			return err
		}
		p.secretIDs[s.Name] = id
	}
	for _, c := range p.createConfigs {
		id, err := e.CreateConfig(ctx, c.Name, c.Data, c.Labels)
		if err != nil {
			return err
		}
		p.configIDs[c.Name] = id
	}
	// services that stay up first, then the jobs, which start as they are written: in a Graph, once the other
	// stacks are healthy (the bootstrap job configures all three)
	for _, jobs := range []bool{false, true} {
		if jobs && d.startsJob(p) {
			if d.own != nil {
				d.own.written.close(nil)
			}
			if d.graph != nil {
				if err := d.graph.awaitOthersHealthy(ctx, d.stack); err != nil {
					return err
				}
			}
		}
		var errs []error
		for _, s := range p.createServices {
			if s.Job() != jobs {
				continue
			}
			spec, err := resolve(s.Spec, p)
			if err == nil {
				_, _, err = e.CreateService(ctx, spec)
			}
			errs = append(errs, err)
		}
		for _, u := range p.updateServices {
			if u.want.Job() != jobs {
				continue
			}
			spec, err := resolve(u.want.Spec, p)
			if err == nil {
				// keep the engine's force-update counter: changing it would restart the tasks by itself
				spec.TaskTemplate.ForceUpdate = u.live.Spec.TaskTemplate.ForceUpdate
				if u.force {
					spec.TaskTemplate.ForceUpdate++
				}
				_, err = e.UpdateService(ctx, u.live.ID, u.live.Version.Index, spec)
			}
			errs = append(errs, err)
		}
		if err := errors.Join(errs...); err != nil {
			return err
		}
	}
	for _, s := range p.removeServices {
		if err := e.RemoveService(ctx, s.ID); err != nil && !docker.IsNotFound(err) {
			return err
		}
	}
	// an old secret or config may still be held by a task of the previous spec: retry until it is released
	removeObjects := func(objs []docker.Object, remove func(context.Context, string) error) error {
		for _, o := range objs {
			err := wait.For(ctx, wait.Target{What: "release of " + o.Name, Where: d.stack.Namespace, Deadline: d.cfg.timeout(),
				Initial: 500 * time.Millisecond, Max: 5 * time.Second, Progress: d.cfg.Progress}, func(ctx context.Context) error {
				err := remove(ctx, o.ID)
				if err == nil || docker.IsNotFound(err) {
					return nil
				}
				if !strings.Contains(err.Error(), "in use") {
					return wait.Permanent(err)
				}
				return err
			})
			if err != nil {
				return err
			}
		}
		return nil
	}
	if err := removeObjects(p.removeSecrets, e.RemoveSecret); err != nil {
		return err
	}
	if err := removeObjects(p.removeConfigs, e.RemoveConfig); err != nil {
		return err
	}
	for _, n := range p.removeNetworks {
		if err := removeNetwork(ctx, d.cfg, e, n); err != nil {
			return err
		}
	}
	if err := d.afterWrites(ctx, p); err != nil {
		return err
	}
	if d.own != nil {
		d.own.written.close(nil)
	}
	return d.converge(ctx, e, nil)
}

// resolve fills in the IDs of the secrets and configs a service spec refers to by name.
func resolve(spec swarm.ServiceSpec, p *plan) (swarm.ServiceSpec, error) {
	c := *spec.TaskTemplate.ContainerSpec
	var err1, err2 error
	c.Secrets, err1 = resolveRefs(spec.Name, "secret", c.Secrets, p.secretIDs,
		func(r *swarm.SecretReference) *string { return &r.SecretName }, func(r *swarm.SecretReference) *string { return &r.SecretID })
	c.Configs, err2 = resolveRefs(spec.Name, "config", c.Configs, p.configIDs,
		func(r *swarm.ConfigReference) *string { return &r.ConfigName }, func(r *swarm.ConfigReference) *string { return &r.ConfigID })
	if err := cmp.Or(err1, err2); err != nil {
		return spec, err
	}
	spec.TaskTemplate.ContainerSpec = &c
	return spec, nil
}

// resolveRefs returns copies of a service's references to secrets or configs (kind) with the IDs of the objects
// they name; name and id address the fields of a reference.
func resolveRefs[R any](service, kind string, refs []*R, ids map[string]string, name, id func(*R) *string) ([]*R, error) {
	out := make([]*R, len(refs))
	for i, r := range refs {
		ref := *r
		*id(&ref) = ids[*name(&ref)]
		if *id(&ref) == "" {
			return nil, fmt.Errorf("service %s: %s %s was not created", service, kind, *name(&ref))
		}
		out[i] = &ref
	}
	return out, nil
}

// removeNetwork removes one of our networks, retrying while the tasks of removed services still hold it.
// The manager removes a network asynchronously: it may still be listed for a moment after the removal was
// accepted (and a second removal then answers "not found"). It waits until the network is no longer listed, so
// that whatever comes next (a check, a deploy of the same names) sees it gone.
func removeNetwork(ctx context.Context, cfg Config, e Engine, n docker.Network) error {
	removed := false
	return wait.For(ctx, wait.Target{What: "removal of network " + n.Name, Where: n.Labels[docker.NamespaceLabel], Deadline: cfg.timeout(),
		Initial: 500 * time.Millisecond, Max: 5 * time.Second, Progress: cfg.Progress}, func(ctx context.Context) error {
		if !removed {
			err := e.RemoveNetwork(ctx, n.ID)
			switch {
			case err == nil || docker.IsNotFound(err) || strings.Contains(err.Error(), "not found"):
				removed = true
			case strings.Contains(err.Error(), "in use") || strings.Contains(err.Error(), "active endpoints"):
				return err
			default:
				return wait.Permanent(err)
			}
		}
		nets, err := e.Networks(ctx, n.Labels[docker.NamespaceLabel])
		if err != nil {
			return err
		}
		for _, have := range nets {
			if have.ID == n.ID {
				return fmt.Errorf("network %s is still listed after its removal", n.Name)
			}
		}
		return nil
	})
}

// sortServices orders services by name, for stable reports.
func sortServices(ss []swarm.Service) {
	sort.Slice(ss, func(i, j int) bool { return ss[i].Spec.Name < ss[j].Spec.Name })
}
