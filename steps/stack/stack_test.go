package stack

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/docker/docker/api/types/swarm"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/docker"
	"github.com/ziti-bootstrap/ziti-bootstrap/stacks"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
)

// fakeEngine keeps Swarm objects in memory and returns service specs in the engine's normal form (network IDs,
// runtime, filled-in restart policy), so that comparisons are tested against what a real engine returns.
type fakeEngine struct {
	mu       sync.Mutex // the steps of a graph call it at once
	n        int
	networks []docker.Network
	secrets  []docker.Object
	configs  []docker.Object
	services []swarm.Service
	calls    []string      // mutating calls, in order
	inUse    int           // RemoveSecret/RemoveConfig fail this many times with "in use"
	created  chan<- string // when set, told the name of every service created
	// hold, when set, is called with a service's name before its tasks are listed (outside the lock): it may block
	hold func(service string)
}

func (f *fakeEngine) id() string { f.n++; return fmt.Sprintf("id%03d", f.n) }

func (f *fakeEngine) Networks(_ context.Context, ns string) ([]docker.Network, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []docker.Network
	for _, n := range f.networks {
		if ns == "" || n.Labels[docker.NamespaceLabel] == ns {
			out = append(out, n)
		}
	}
	return out, nil
}
func (f *fakeEngine) CreateNetwork(_ context.Context, s docker.NetworkSpec) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "create network "+s.Name)
	id := f.id()
	f.networks = append(f.networks, docker.Network{ID: id, Name: s.Name, Driver: s.Driver, Labels: s.Labels, Attachable: s.Attachable, Internal: s.Internal, Scope: "swarm"})
	return id, nil
}
func (f *fakeEngine) RemoveNetwork(_ context.Context, id string) error {
	return removeOne(f, "network", id, &f.networks, func(n docker.Network) string { return n.ID })
}

// removeOne records the call "remove KIND ID" and removes the object with that id from list, or fails as the
// engine does when there is none.
func removeOne[T any](f *fakeEngine, kind, id string, list *[]T, idOf func(T) string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "remove "+kind+" "+id)
	i := slices.IndexFunc(*list, func(o T) bool { return idOf(o) == id })
	if i < 0 {
		return fmt.Errorf("no %s %s", kind, id)
	}
	*list = append((*list)[:i], (*list)[i+1:]...)
	return nil
}
func objects(list []docker.Object, ns string) []docker.Object {
	var out []docker.Object
	for _, o := range list {
		if o.Labels[docker.NamespaceLabel] == ns {
			out = append(out, o)
		}
	}
	return out
}
func (f *fakeEngine) Secrets(_ context.Context, ns string) ([]docker.Object, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return objects(f.secrets, ns), nil
}
func (f *fakeEngine) Configs(_ context.Context, ns string) ([]docker.Object, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return objects(f.configs, ns), nil
}
func (f *fakeEngine) CreateSecret(_ context.Context, name string, _ []byte, labels map[string]string) (string, error) {
	return f.createObject(&f.secrets, "secret", name, labels), nil
}
func (f *fakeEngine) CreateConfig(_ context.Context, name string, _ []byte, labels map[string]string) (string, error) {
	return f.createObject(&f.configs, "config", name, labels), nil
}

// createObject records the call "create KIND NAME" and adds a secret or config to list; it returns its id.
func (f *fakeEngine) createObject(list *[]docker.Object, kind, name string, labels map[string]string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "create "+kind+" "+name)
	id := f.id()
	*list = append(*list, docker.Object{ID: id, Name: name, Labels: labels})
	return id
}
func (f *fakeEngine) RemoveSecret(_ context.Context, id string) error {
	f.mu.Lock()
	inUse := f.inUse > 0
	if inUse {
		f.inUse--
	}
	f.mu.Unlock()
	if inUse {
		return fmt.Errorf("rpc error: secret %s is in use by the following service: x", id)
	}
	return removeOne(f, "secret", id, &f.secrets, objectID)
}
func (f *fakeEngine) RemoveConfig(_ context.Context, id string) error {
	return removeOne(f, "config", id, &f.configs, objectID)
}
func objectID(o docker.Object) string { return o.ID }
func (f *fakeEngine) Services(_ context.Context, ns string) ([]swarm.Service, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []swarm.Service
	for _, s := range f.services {
		if s.Spec.Labels[docker.NamespaceLabel] == ns {
			out = append(out, s)
		}
	}
	return out, nil
}

// normalise does to a spec what the engine does when it stores it.
func (f *fakeEngine) normalise(spec swarm.ServiceSpec) swarm.ServiceSpec {
	spec.TaskTemplate.Runtime = "container"
	var nets []swarm.NetworkAttachmentConfig
	for _, n := range spec.TaskTemplate.Networks {
		for _, live := range f.networks {
			if live.Name == n.Target {
				n.Target = live.ID
			}
		}
		nets = append(nets, n)
	}
	spec.TaskTemplate.Networks = nets
	if rp := spec.TaskTemplate.RestartPolicy; rp != nil && rp.MaxAttempts == nil {
		c := *rp
		zero := uint64(0)
		c.MaxAttempts = &zero
		spec.TaskTemplate.RestartPolicy = &c
	}
	return spec
}

func (f *fakeEngine) CreateService(_ context.Context, spec swarm.ServiceSpec) (string, []string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.created != nil {
		f.created <- spec.Name
	}
	f.calls = append(f.calls, "create service "+spec.Name)
	id := f.id()
	f.services = append(f.services, swarm.Service{ID: id, Meta: swarm.Meta{Version: swarm.Version{Index: 1}}, Spec: f.normalise(spec),
		ServiceStatus: &swarm.ServiceStatus{DesiredTasks: 1}})
	return id, nil, nil
}
func (f *fakeEngine) UpdateService(_ context.Context, id string, version uint64, spec swarm.ServiceSpec) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "update service "+spec.Name)
	for i, s := range f.services {
		if s.ID == id {
			if s.Version.Index != version {
				return nil, fmt.Errorf("update out of sequence")
			}
			f.services[i].Spec = f.normalise(spec)
			f.services[i].Version.Index++
			return nil, nil
		}
	}
	return nil, fmt.Errorf("no service %s", id)
}
func (f *fakeEngine) RemoveService(_ context.Context, id string) error {
	return removeOne(f, "service", id, &f.services, func(s swarm.Service) string { return s.ID })
}

// Tasks: one task per service, running (or complete for jobs), made from the current spec.
func (f *fakeEngine) Tasks(ctx context.Context, ids ...string) ([]swarm.Task, error) {
	var out []swarm.Task
	for _, id := range ids {
		ts, err := f.tasksOf(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, ts...)
	}
	return out, nil
}

func (f *fakeEngine) tasksOf(_ context.Context, id string) ([]swarm.Task, error) {
	if f.hold != nil {
		f.mu.Lock()
		i := slices.IndexFunc(f.services, func(s swarm.Service) bool { return s.ID == id })
		name := ""
		if i >= 0 {
			name = f.services[i].Spec.Name
		}
		f.mu.Unlock()
		f.hold(name)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.services {
		if s.ID == id {
			state := swarm.TaskStateRunning
			if s.Spec.Mode.ReplicatedJob != nil {
				state = swarm.TaskStateComplete
			}
			spec := s.Spec.TaskTemplate
			spec.Runtime = ""
			return []swarm.Task{{ID: id + "t", ServiceID: id, Spec: spec, DesiredState: swarm.TaskStateRunning,
				Status: swarm.TaskStatus{State: state, Timestamp: time.Now()}}}, nil
		}
	}
	return nil, nil
}
func (f *fakeEngine) Volumes(context.Context, string) ([]docker.Volume, error) { return nil, nil }
func (f *fakeEngine) RemoveVolume(context.Context, string) error               { return nil }

const testStack = `services:
  server:
    image: ${IMG:-srv:1}
    environment:
      A: "1"
      B: ${B:-2}
    secrets: [pw]
    configs:
      - source: conf
        target: /etc/conf
    networks: [net]
    deploy:
      restart_policy:
        condition: any
  job:
    image: job:1
    networks: [net]
    deploy:
      mode: replicated-job
networks:
  net: {}
secrets:
  pw:
    environment: PW
configs:
  conf:
    environment: CONF
`

func testLoad(t *testing.T, vars map[string]string) *stacks.Stack {
	t.Helper()
	all := map[string]string{"PW": "secret", "CONF": "conf"}
	for k, v := range vars {
		all[k] = v
	}
	st, err := stacks.Load(context.Background(), stacks.Spire, stacks.Options{Names: stacks.Names{stacks.Spire: "t"}, Vars: all,
		FS: fstest.MapFS{"spire.yml": {Data: []byte(testStack)}}})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func runPlan(t *testing.T, f *fakeEngine, st *stacks.Stack, apply bool, rerun ...string) []steps.Change {
	t.Helper()
	d := New(Config{Engine: func() Engine { return f }, Timeout: 2 * time.Second, Rerun: rerun,
		AfterWrites: func(context.Context) error { f.calls = append(f.calls, "after writes"); return nil }}, st)
	p, err := d.Plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if apply {
		if err := p.Apply(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	return p.Changes
}

func changeList(cs []steps.Change) string {
	var out []string
	for _, c := range cs {
		s := string(c.Action) + " " + c.Kind + " " + c.Key
		if len(c.Fields) > 0 {
			s += " " + strings.Join(c.Fields, ",")
		}
		out = append(out, s)
	}
	return strings.Join(out, "\n")
}

func TestDeployPlanApplyIdempotent(t *testing.T) {
	f := &fakeEngine{}
	st := testLoad(t, nil)
	got := changeList(runPlan(t, f, st, true))
	pw, conf := st.Secrets[0].Name, st.Configs[0].Name
	want := strings.Join([]string{
		"create swarm-network t_net",
		"create swarm-secret " + pw,
		"create swarm-config " + conf,
		"create swarm-service t_job",
		"create swarm-service t_server",
	}, "\n")
	if got != want {
		t.Fatalf("first plan:\n%s\nwant:\n%s", got, want)
	}
	// the job (which starts as it is written) after the other services; AfterWrites (up hands its lock over
	// there) after every write
	if got := strings.Join(f.calls, "; "); got != "create network t_net; create secret "+pw+"; create config "+conf+"; create service t_server; create service t_job; after writes" {
		t.Errorf("apply order: %s", got)
	}
	// the engine's spec resolves secret and config IDs
	if s := f.services[0].Spec.TaskTemplate.ContainerSpec.Secrets[0]; s.SecretID == "" || s.SecretName != pw {
		t.Errorf("secret reference %+v", s)
	}
	f.calls = nil
	if ch := runPlan(t, f, st, true); len(ch) != 0 || len(f.calls) != 0 {
		t.Fatalf("second run: changes %v, calls %v", ch, f.calls)
	}
}

func TestDeployChanges(t *testing.T) {
	f := &fakeEngine{}
	runPlan(t, f, testLoad(t, nil), true)
	oldPW := f.secrets[0]

	// a new image and env value: one update naming both fields, without the env value
	f.calls = nil
	ch := runPlan(t, f, testLoad(t, map[string]string{"IMG": "srv:2", "B": "3"}), true)
	if got := changeList(ch); got != "update swarm-service t_server image,env,labels" {
		t.Errorf("image+env change:\n%s", got)
	}
	if !strings.Contains(ch[0].Reason, "image srv:1 → srv:2") || !strings.Contains(ch[0].Reason, "env ~B") || strings.Contains(ch[0].Reason, "3") {
		t.Errorf("reason %q", ch[0].Reason)
	}

	// a new secret value: a new secret, the service switched to it, the old one removed once released
	f.calls = nil
	f.inUse = 2
	st := testLoad(t, map[string]string{"IMG": "srv:2", "B": "3", "PW": "rotated"})
	ch = runPlan(t, f, st, true)
	want := "create swarm-secret " + st.Secrets[0].Name + "\nupdate swarm-service t_server secrets\ndelete swarm-secret " + oldPW.Name
	if got := changeList(ch); got != want {
		t.Errorf("secret rotation:\n%s\nwant:\n%s", got, want)
	}
	if !strings.Contains(ch[0].Reason, "replaces "+oldPW.Name) || !strings.Contains(ch[2].Reason, "superseded by "+st.Secrets[0].Name) {
		t.Errorf("reasons %q, %q", ch[0].Reason, ch[2].Reason)
	}
	if got := strings.Join(f.calls, "; "); !strings.HasSuffix(got, "update service t_server; remove secret "+oldPW.ID) {
		t.Errorf("calls: %s", got)
	}
	if len(f.secrets) != 1 {
		t.Errorf("secrets left: %v", f.secrets)
	}
}

func TestDeployOwnsOnlyItsObjects(t *testing.T) {
	// a network of the same name that is not ours: refuse
	f := &fakeEngine{networks: []docker.Network{{ID: "x", Name: "t_net", Driver: "overlay", Labels: map[string]string{"other": "1"}}}}
	d := New(Config{Engine: func() Engine { return f }}, testLoad(t, nil))
	if _, err := d.Plan(context.Background()); err == nil || !strings.Contains(err.Error(), "does not belong to stack t") {
		t.Errorf("foreign network: %v", err)
	}
	// objects of another stack are never touched; ours that the file dropped are deleted
	f = &fakeEngine{}
	runPlan(t, f, testLoad(t, nil), true)
	f.secrets = append(f.secrets, docker.Object{ID: "foreign", Name: "u_pw_1", Labels: map[string]string{docker.NamespaceLabel: "u"}},
		docker.Object{ID: "old", Name: "t_gone_1", Labels: map[string]string{docker.NamespaceLabel: "t", stacks.LabelKey: "gone"}})
	if got := changeList(runPlan(t, f, testLoad(t, nil), true)); got != "delete swarm-secret t_gone_1" {
		t.Errorf("plan: %s", got)
	}
	if len(f.secrets) != 2 || f.secrets[1].ID != "foreign" {
		t.Errorf("secrets: %v", f.secrets)
	}
}

func TestMissingExternalNetwork(t *testing.T) {
	st := testLoad(t, nil)
	st.Networks = append(st.Networks, stacks.Network{Key: "ext", Name: "other_ext", External: true})
	d := New(Config{Engine: func() Engine { return &fakeEngine{} }}, st)
	if _, err := d.Plan(context.Background()); err == nil || !strings.Contains(err.Error(), "external network other_ext (networks.ext) does not exist") {
		t.Errorf("err = %v", err)
	}
}

func TestRemove(t *testing.T) {
	f := &fakeEngine{}
	runPlan(t, f, testLoad(t, nil), true)
	f.calls = nil
	r := RemoveSteps(Config{Engine: func() Engine { return f }, Timeout: time.Second}, "", false, [][2]string{{"spire", "t"}})[0]
	p, err := r.Plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Apply(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(f.services)+len(f.secrets)+len(f.configs)+len(f.networks) != 0 {
		t.Errorf("left: %+v", f)
	}
	if got := strings.Join(f.calls, "; "); !strings.HasPrefix(got, "remove service") || !strings.HasSuffix(got, "remove network id001") {
		t.Errorf("order: %s", got)
	}
}

func TestRemoveStepsChain(t *testing.T) {
	rs := RemoveSteps(Config{}, "docker/reachable", true, [][2]string{{"spire", "a"}, {"keycloak", "b"}})
	if rs[0].Name() != "down/keycloak" || rs[1].Name() != "down/spire" || rs[1].DependsOn()[0] != "down/keycloak" {
		t.Errorf("removal chain: %s %s%v", rs[0].Name(), rs[1].Name(), rs[1].DependsOn())
	}
}

func TestAssess(t *testing.T) {
	one, three := uint64(1), uint64(3)
	tmpl := swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: "a:1"}}
	old := swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: "a:0"}}
	svc := func(mode swarm.ServiceMode) swarm.Service {
		return swarm.Service{Spec: swarm.ServiceSpec{Annotations: swarm.Annotations{Name: "s"}, Mode: mode, TaskTemplate: tmpl},
			ServiceStatus: &swarm.ServiceStatus{DesiredTasks: 1}}
	}
	replicated := svc(swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &one}})
	task := func(spec swarm.TaskSpec, state swarm.TaskState, err string) swarm.Task {
		return swarm.Task{ID: "t", Spec: spec, DesiredState: swarm.TaskStateRunning, Status: swarm.TaskStatus{State: state, Err: err, Timestamp: time.Now()}}
	}
	job := svc(swarm.ServiceMode{ReplicatedJob: &swarm.ReplicatedJob{TotalCompletions: &one, MaxConcurrent: &one}})
	job.Spec.TaskTemplate.RestartPolicy = &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionOnFailure, MaxAttempts: &three}
	jobTmpl := job.Spec.TaskTemplate
	updating := replicated
	updating.UpdateStatus = &swarm.UpdateStatus{State: swarm.UpdateStateUpdating, Message: "update in progress"}
	rolledBack := replicated
	rolledBack.UpdateStatus = &swarm.UpdateStatus{State: swarm.UpdateStateRollbackCompleted, Message: "rollback completed"}
	failed := func(n int) []swarm.Task {
		var ts []swarm.Task
		for range n {
			ts = append(ts, task(jobTmpl, swarm.TaskStateFailed, "task: non-zero exit (1)"))
		}
		return ts
	}
	tests := []struct {
		name      string
		svc       swarm.Service
		tasks     []swarm.Task
		converged bool
		permanent bool
		problem   string
	}{
		{"running", replicated, []swarm.Task{task(tmpl, swarm.TaskStateRunning, "")}, true, false, ""},
		{"starting: not yet healthy", replicated, []swarm.Task{task(tmpl, swarm.TaskStateStarting, "")}, false, false, "starting"},
		{"old spec running only", replicated, []swarm.Task{task(old, swarm.TaskStateRunning, "")}, false, false, "no task yet"},
		{"update in progress", updating, []swarm.Task{task(tmpl, swarm.TaskStateRunning, "")}, false, false, "update updating"},
		{"rolled back", rolledBack, []swarm.Task{task(tmpl, swarm.TaskStateRunning, "")}, false, true, "rolled back"},
		{"no such image", replicated, []swarm.Task{task(tmpl, swarm.TaskStateRejected, "No such image: x:1")}, false, true, "No such image"},
		{"crashing", replicated, []swarm.Task{task(tmpl, swarm.TaskStateFailed, "task: non-zero exit (1)")}, false, false, "non-zero exit (1)"},
		{"job done", job, []swarm.Task{task(jobTmpl, swarm.TaskStateComplete, "")}, true, false, ""},
		{"job retrying", job, failed(2), false, false, "non-zero exit"},
		{"job out of attempts", job, failed(4), false, true, "out of attempts"},
		{"global none yet", svc(swarm.ServiceMode{Global: &swarm.GlobalService{}}), nil, false, false, "no task yet"},
	}
	for _, tt := range tests {
		st, perm := Assess(tt.svc, stacks.Service{Healthcheck: true}, tt.tasks)
		if st.Converged != tt.converged || perm != tt.permanent || !strings.Contains(st.Problem, tt.problem) {
			t.Errorf("%s: converged %v permanent %v problem %q", tt.name, st.Converged, perm, st.Problem)
		}
	}
}

func TestCompareIgnoresEngineNormalForm(t *testing.T) {
	f := &fakeEngine{networks: []docker.Network{{ID: "n1", Name: "t_net"}}}
	st := testLoad(t, nil)
	want := st.Services[1].Spec
	live := f.normalise(want)
	netName := func(id string) string {
		if id == "n1" {
			return "t_net"
		}
		return id
	}
	if d := Compare(&live, &want, netName); len(d) != 0 {
		t.Errorf("differences in the engine's normal form: %v", d)
	}
	// the engine returns empty, not nil, parts
	live.TaskTemplate.Resources = &swarm.ResourceRequirements{Limits: &swarm.Limit{}, Reservations: &swarm.Resources{}}
	want.TaskTemplate.Resources = nil
	live.TaskTemplate.ContainerSpec.Mounts = nil
	if d := Compare(&live, &want, netName); len(d) != 0 {
		t.Errorf("empty vs nil: %v", d)
	}
	// an update_config that names only some fields is stored with Swarm's defaults for the others
	want.UpdateConfig = &swarm.UpdateConfig{Parallelism: 1, Order: swarm.UpdateOrderStopFirst}
	live.UpdateConfig = &swarm.UpdateConfig{Parallelism: 1, Order: swarm.UpdateOrderStopFirst, FailureAction: swarm.UpdateFailureActionPause}
	if d := Compare(&live, &want, netName); len(d) != 0 {
		t.Errorf("update_config defaults: %v", d)
	}
	live.UpdateConfig.FailureAction = swarm.UpdateFailureActionRollback
	if d := Compare(&live, &want, netName); len(d) != 1 {
		t.Errorf("update_config failure_action rollback vs default pause: differences %v, want update_config", d)
	}
}

// A global service (the SPIRE agent launcher) is shown per node: the newest task of each node.
func TestStatusPerNodeOfAGlobalService(t *testing.T) {
	at := func(s int) swarm.Meta { return swarm.Meta{CreatedAt: time.Unix(int64(s), 0)} }
	tasks := []swarm.Task{
		{NodeID: "n2", Meta: at(1), Status: swarm.TaskStatus{State: swarm.TaskStateFailed, Err: "agent unhealthy"}},
		{NodeID: "n2", Meta: at(2), Status: swarm.TaskStatus{State: swarm.TaskStateRunning}},
		{NodeID: "n1", Meta: at(3), Status: swarm.TaskStatus{State: swarm.TaskStateFailed, Err: "no such image"}},
		{Meta: at(4), Status: swarm.TaskStatus{State: swarm.TaskStatePending}}, // not placed yet
	}
	got := newestPerNode(tasks)
	want := []NodeTask{{Node: "n1", State: "failed", Error: "no such image"}, {Node: "n2", State: "running"}}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("per node: %+v, want %+v", got, want)
	}
}

// up hands its lock to the job once all its writes are done: when a deploy restarts the job and also removes
// an old secret, AfterWrites comes after the removal (before, up removed objects after handing over).
func TestDeployAfterWritesFollowsTheRemovals(t *testing.T) {
	f := &fakeEngine{}
	runPlan(t, f, testLoad(t, nil), true)
	f.calls = nil
	runPlan(t, f, testLoad(t, map[string]string{"PW": "another"}), true, "job")
	if n := len(f.calls); n == 0 || f.calls[n-1] != "after writes" || !slices.ContainsFunc(f.calls, func(c string) bool { return strings.HasPrefix(c, "remove secret") }) {
		t.Fatalf("apply order: %s; want a secret removed and AfterWrites last", strings.Join(f.calls, "; "))
	}
}
