package stack

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/docker/docker/api/types/swarm"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/calls"
	"github.com/ziti-bootstrap/ziti-bootstrap/stacks"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
)

// Three stacks shaped like ours: s owns a volume (SPIRE's agent socket), k a network (Keycloak's), and z mounts
// the one and joins the other, with a service and a job.
var graphFS = fstest.MapFS{
	"spire.yml": {Data: []byte(`services:
  server:
    image: srv:1
    volumes: [sock:/run/sock]
volumes:
  sock: {}
`)},
	"keycloak.yml": {Data: []byte(`services:
  server:
    image: kc:1
    networks: [kc]
networks:
  kc: {}
`)},
	"openziti.yml": {Data: []byte(`services:
  ctrl:
    image: ctrl:1
    volumes: [sock:/run/sock]
    networks: [kc]
  job:
    image: job:1
    networks: [kc]
    deploy:
      mode: replicated-job
networks:
  kc:
    external: true
    name: k_kc
volumes:
  sock:
    external: true
    name: s_sock
`)},
}

func graphStacks(t *testing.T) []*stacks.Stack {
	t.Helper()
	var out []*stacks.Stack
	for _, n := range []string{stacks.Spire, stacks.Keycloak, stacks.OpenZiti} {
		st, err := stacks.Load(context.Background(), n, stacks.Options{FS: graphFS,
			Names: stacks.Names{stacks.Spire: "s", stacks.Keycloak: "k", stacks.OpenZiti: "z"}})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, st)
	}
	return out
}

// Each stack's deploy depends on what it needs healthy (the owner of a volume it mounts), not on the stack before
// it: Keycloak's does not wait for SPIRE; steps put before a stack come between; the order is the stacks' order.
func TestGraphDependsOnWhatEachStackNeeds(t *testing.T) {
	sts := graphStacks(t)
	g := NewGraph(Config{}, "first", sts...)
	ss := g.Steps(func(st *stacks.Stack) []steps.Step {
		if st.Name != stacks.OpenZiti {
			return nil
		}
		return []steps.Step{g.Deploy(sts[1], "x")} // any step: its name is what counts
	})
	var got []string
	for _, s := range ss {
		got = append(got, s.Name()+slices.Concat([]string{"<"}, s.DependsOn())[0]+strings.Join(s.DependsOn(), ","))
	}
	want := []string{"stack/spire<first", "stack/keycloak<first", "stack/keycloak<first,x", "stack/openziti<first,stack/spire,stack/keycloak"}
	if !slices.Equal(got, want) {
		t.Errorf("steps\n%v\nwant\n%v", got, want)
	}
}

// Run by the runner, the stacks start at once as far as their needs allow: z's service is created while k is
// still starting (k's network exists: z waited for it), and z's job only once k is healthy.
func TestGraphStartsJobsOnceTheOtherStacksAreHealthy(t *testing.T) {
	created := make(chan string, 100)
	release := make(chan struct{})
	f := &fakeEngine{created: created, hold: func(service string) {
		if service == "k_server" {
			<-release
		}
	}}
	cfg := Config{Engine: func() Engine { return f }, Timeout: time.Minute}
	done := make(chan *steps.Report, 1)
	go func() {
		rep, err := (&steps.Runner{Steps: Steps(cfg, "", graphStacks(t)...), Counter: calls.New()}).Run(context.Background(), steps.Apply)
		if err != nil {
			t.Error(err)
		}
		done <- rep
	}()
	timeout := time.After(time.Minute)
	for seen := []string{}; !slices.Contains(seen, "z_ctrl"); {
		select {
		case name := <-created:
			if name == "z_job" {
				t.Fatalf("job created before stack k was healthy (created so far: %v)", seen)
			}
			seen = append(seen, name)
		case <-timeout:
			t.Fatal("z_ctrl was not created while k was starting: z waits for more than it needs")
		}
	}
	close(release)
	var rep *steps.Report
	select {
	case rep = <-done:
	case <-timeout:
		t.Fatal("the run did not end once k was healthy")
	}
	for _, s := range rep.Steps {
		if s.Status != steps.Changed {
			t.Errorf("%s: %s %s", s.Name, s.Status, s.Error)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if i := slices.Index(f.calls, "create service z_job"); i < 0 || i < slices.Index(f.calls, "create network k_kc") {
		t.Errorf("calls %v", f.calls)
	}
}

// A failed stack stops the jobs that wait for it, not the other stacks' services.
func TestGraphJobWaitsForAFailedStackInVain(t *testing.T) {
	f := &fakeEngine{}
	sts := graphStacks(t)
	cfg := Config{Engine: func() Engine { return &failingCreate{fakeEngine: f, fail: "k_server"} }, Timeout: time.Minute}
	rep, err := (&steps.Runner{Steps: Steps(cfg, "", sts...), Counter: calls.New()}).Run(context.Background(), steps.Apply)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]steps.Status{}
	for _, s := range rep.Steps {
		got[s.Name] = s.Status
	}
	if got["stack/spire"] != steps.Changed || got["stack/keycloak"] != steps.Failed || got["stack/openziti"] != steps.Failed ||
		!strings.Contains(rep.Steps[2].Error, "stack k healthy") {
		t.Fatalf("statuses %v; openziti: %s", got, rep.Steps[2].Error)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !slices.Contains(f.calls, "create service z_ctrl") || slices.Contains(f.calls, "create service z_job") {
		t.Errorf("calls %v", f.calls)
	}
}

// failingCreate fails the creation of one service.
type failingCreate struct {
	*fakeEngine
	fail string
}

func (e *failingCreate) CreateService(ctx context.Context, spec swarm.ServiceSpec) (string, []string, error) {
	if spec.Name == e.fail {
		return "", nil, errors.New("image refused")
	}
	return e.fakeEngine.CreateService(ctx, spec)
}

// A stack's Docker event wakes the convergence check at once and again after each lag, when the manager has
// recorded the task's new state.
func TestEchoWakesAgainAfterTheEvent(t *testing.T) {
	in := make(chan struct{})
	timers := make(chan func(), 2)
	out := echo(in, []time.Duration{time.Millisecond, time.Second}, func(_ time.Duration, f func()) { timers <- f })
	in <- struct{}{}
	<-out // at once
	for i := range 2 {
		fire := <-timers
		select {
		case <-out:
			t.Fatalf("woken again before lag %d", i+1)
		default:
		}
		fire()
		<-out
	}
	close(in)
}
