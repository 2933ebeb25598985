// Package capin pins the OpenZiti controller's CA for up: it reads it once, from the controller's PKI volume or
// from the config an earlier up left, and ships it to every service of the OpenZiti stack that calls the
// controller, which verifies the controller against it.
package capin

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/docker/docker/api/types/swarm"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/docker"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/exitcode"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/wait"
	"github.com/ziti-bootstrap/ziti-bootstrap/stacks"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps/stack"
)

// The OpenZiti controller's CA is pinned: up reads it once, from the controller's PKI volume (the controller
// image's bootstrap writes its root CA there on the first start) or from the config an earlier up left, shows its
// SHA-256 fingerprint, and ships it as a config of the OpenZiti stack to every service of the stack that calls the
// controller. They verify the controller against it (ZITI_CA_FILE): none trusts what answers on first use.
const (
	Key                 = "ziti-ctrl-ca"
	Target              = "/etc/ziti-bootstrap/ziti-ctrl-ca.pem"
	File                = "/ziti-controller/pki/root/certs/root.cert" // ZITI_PKI_ROOT=pki, ZITI_CA_FILE=root in its WORKDIR
	ControllerService   = "ziti-controller"
	StepName            = "ziti/ca-pin"
	ControllerFirstStep = "ziti/controller-first"
	MaxBundle           = 64 << 10
)

// Clients are the services of the OpenZiti stack that call the controller with its admin password.
var Clients = []string{"router-enrol", stacks.BootstrapService, stacks.BackupService, "converge"}

// Engine is what pinning reads of the Docker Engine (never writes); *docker.Client has it.
type Engine interface {
	Configs(ctx context.Context, namespace string) ([]docker.Object, error)
	ConfigData(ctx context.Context, nameOrID string) ([]byte, error)
	Services(ctx context.Context, namespace string) ([]swarm.Service, error)
	Containers(ctx context.Context, namespace string) ([]docker.Container, error)
	ReadContainerFile(ctx context.Context, id, file string, limit int64) ([]byte, error)
}

var _ Engine = (*docker.Client)(nil)

// Pin is the controller's CA as pinned.
type Pin struct {
	PEM         []byte
	Fingerprint string // SHA-256 of the first certificate's DER, as openssl x509 -fingerprint -sha256 shows it
	From        string
}

// New checks that data is a PEM bundle of CA certificates and computes its fingerprint.
func New(data []byte, from string) (*Pin, error) {
	var first []byte
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("the controller's CA (%s) holds a PEM block %q: only CERTIFICATE is expected", from, b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("the controller's CA (%s): %w", from, err)
		}
		if !c.IsCA {
			return nil, fmt.Errorf("the controller's CA (%s): certificate %q is not a CA", from, c.Subject)
		}
		if first == nil {
			first = b.Bytes
		}
	}
	if first == nil || strings.TrimSpace(string(rest)) != "" {
		return nil, fmt.Errorf("the controller's CA (%s) is not a PEM bundle of certificates", from)
	}
	sum := sha256.Sum256(first)
	hexs := make([]string, len(sum))
	for i, b := range sum {
		hexs[i] = fmt.Sprintf("%02X", b)
	}
	return &Pin{PEM: data, Fingerprint: strings.Join(hexs, ":"), From: from}, nil
}

// Give ships the pin to every service of st that calls the controller.
func (p *Pin) Give(st *stacks.Stack) error {
	for _, s := range Clients {
		if !st.HasService(s) {
			continue
		}
		if err := st.AddConfig(s, Key, Target, "ZITI_CA_FILE", p.PEM); err != nil {
			return err
		}
	}
	return nil
}

// Pinned is the pin an earlier up left in namespace ns (the newest config of the key), or nil.
func Pinned(ctx context.Context, e Engine, ns string) (*Pin, error) {
	objs, err := e.Configs(ctx, ns)
	if err != nil {
		return nil, err
	}
	objs = slices.DeleteFunc(objs, func(o docker.Object) bool { return o.Labels[stacks.LabelKey] != Key })
	if len(objs) == 0 {
		return nil, nil
	}
	newest := slices.MaxFunc(objs, func(a, b docker.Object) int { return a.CreatedAt.Compare(b.CreatedAt) })
	data, err := e.ConfigData(ctx, newest.ID)
	if err != nil {
		return nil, err
	}
	return New(data, "pinned in the Swarm config "+newest.Name)
}

// FromController reads the CA from the PKI volume of the controller's running container of namespace ns on the
// engine up talks to. It returns (nil, nil) when the controller service does not exist.
func FromController(ctx context.Context, e Engine, ns string, deadline time.Duration, progress wait.Progress) (*Pin, error) {
	svcs, err := e.Services(ctx, ns)
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(svcs, func(s swarm.Service) bool { return s.Spec.Name == ns+"_"+ControllerService })
	if i < 0 {
		return nil, nil
	}
	var data []byte
	err = wait.For(ctx, wait.Target{What: "the controller's CA in its PKI volume (" + File + ")",
		Where: "a running container of " + svcs[i].Spec.Name + " on this Docker Engine", Deadline: deadline, Progress: progress},
		func(ctx context.Context) error {
			cs, err := e.Containers(ctx, ns)
			if err != nil {
				return err
			}
			cs = slices.DeleteFunc(cs, func(c docker.Container) bool { return c.ServiceID != svcs[i].ID || c.State != "running" })
			if len(cs) == 0 {
				return fmt.Errorf("no running container of %s on the engine up talks to: run up against the Docker Engine of the node that runs the controller (the state node)", svcs[i].Spec.Name)
			}
			data, err = e.ReadContainerFile(ctx, cs[0].ID, File, MaxBundle)
			return err
		})
	if err != nil {
		return nil, err
	}
	return New(data, "read from the controller's PKI volume, "+File)
}

// Steps returns the deploy steps of the stacks (stack.Graph, all after first); before the OpenZiti stack (when it
// has a service that calls the controller) come the step that deploys the controller alone when the Swarm has none
// yet (controllerOnly) and the step that pins its CA.
func Steps(cfg stack.Config, engine func() (Engine, error), controllerOnly *stacks.Stack, first string, sts ...*stacks.Stack) []steps.Step {
	g := stack.NewGraph(cfg, first, sts...)
	return g.Steps(func(st *stacks.Stack) []steps.Step {
		if st.Name != stacks.OpenZiti || !slices.ContainsFunc(Clients, func(s string) bool { return st.HasService(s) }) {
			return nil
		}
		deps := slices.DeleteFunc([]string{first}, func(s string) bool { return s == "" })
		pin := &ctrlCAPin{engine: engine, stack: st, deps: deps, timeout: cfg.Timeout, progress: cfg.Progress}
		if controllerOnly == nil {
			return []steps.Step{pin}
		}
		cf := &controllerFirst{Deploy: g.Deploy(controllerOnly), engine: engine, ns: st.Namespace, deps: deps}
		pin.deps, pin.first = []string{cf.Name()}, cf
		return []steps.Step{cf, pin}
	})
}

// ControllerOnlyStack loads the OpenZiti stack of loaded, when it is there, with its controller alone (opts are
// those it was loaded with).
func ControllerOnlyStack(ctx context.Context, loaded []*stacks.Stack, opts stacks.Options) (*stacks.Stack, error) {
	i := slices.IndexFunc(loaded, func(st *stacks.Stack) bool { return st.Name == stacks.OpenZiti })
	if i < 0 || !loaded[i].HasService(ControllerService) {
		return nil, nil
	}
	st := loaded[i]
	opts.Without = slices.Clone(opts.Without)
	for _, s := range st.Services {
		if key := strings.TrimPrefix(s.Spec.Name, st.Namespace+"_"); key != ControllerService {
			opts.Without = append(opts.Without, key)
		}
	}
	one, err := stacks.Load(ctx, stacks.OpenZiti, opts)
	if err != nil {
		return nil, exitcode.With(exitcode.InvalidConfig, err)
	}
	one.Name = st.Name + "-controller"
	return one, nil
}

// controllerFirst deploys the controller alone, and waits until it is healthy, on a Swarm that has neither a
// controller nor a pinned CA: its CA exists only once it has started. Anywhere else it plans nothing.
type controllerFirst struct {
	*stack.Deploy
	engine func() (Engine, error)
	ns     string
	deps   []string
	pinned *Pin // the pin its plan found, which the pinning step, next, takes rather than read it again
}

func (c *controllerFirst) Name() string        { return ControllerFirstStep }
func (c *controllerFirst) DependsOn() []string { return c.deps }

func (c *controllerFirst) Plan(ctx context.Context) (*steps.Plan, error) {
	e, err := c.engine()
	if err != nil {
		return nil, err
	}
	pin, err := Pinned(ctx, e, c.ns)
	if c.pinned = pin; err != nil || pin != nil {
		return steps.NewPlan(nil, nil), err
	}
	svcs, err := e.Services(ctx, c.ns)
	if err != nil {
		return nil, err
	}
	if slices.ContainsFunc(svcs, func(s swarm.Service) bool { return s.Spec.Name == c.ns+"_"+ControllerService }) {
		return steps.NewPlan(nil, nil), nil
	}
	p, err := c.Deploy.Plan(ctx)
	if err != nil {
		return nil, err
	}
	return p.Note("no controller yet: it starts alone first, so that its CA can be pinned before anything calls it"), nil
}

// ctrlCAPin is the step that pins the controller's CA: it gives the pin to the OpenZiti stack before that stack's
// deploy step plans. It writes nothing itself: the pin becomes a config of the stack, written by its deploy.
type ctrlCAPin struct {
	engine   func() (Engine, error)
	stack    *stacks.Stack
	deps     []string
	timeout  time.Duration
	progress wait.Progress
	given    *Pin             // the pin given to stack (a plan made again gives it once)
	first    *controllerFirst // the step before it, if any: the pin that step found is not read again
}

func (p *ctrlCAPin) Name() string        { return StepName }
func (p *ctrlCAPin) DependsOn() []string { return p.deps }

func (p *ctrlCAPin) Plan(ctx context.Context) (*steps.Plan, error) {
	e, err := p.engine()
	if err != nil {
		return nil, err
	}
	var pin *Pin
	if p.first != nil {
		pin = p.first.pinned
	}
	if pin == nil {
		pin, err = Pinned(ctx, e, p.stack.Namespace)
	}
	if err == nil && pin == nil {
		pin, err = FromController(ctx, e, p.stack.Namespace, p.timeout, p.progress)
	}
	if err != nil {
		return nil, fmt.Errorf("pin the controller's CA: %w", err)
	}
	if pin == nil { // a dry run on a Swarm without a controller
		return steps.NewPlan(nil, nil).Note("the controller's CA is pinned once the controller has started (no controller yet)"), nil
	}
	if p.given == nil {
		if err := pin.Give(p.stack); err != nil {
			return nil, err
		}
		p.given = pin
	} else if p.given.Fingerprint != pin.Fingerprint || string(p.given.PEM) != string(pin.PEM) {
		return nil, fmt.Errorf("the controller's CA changed during the run (%s, then %s)", p.given.Fingerprint, pin.Fingerprint)
	}
	return steps.NewPlan(nil, nil).Note("controller CA pinned: SHA-256 %s (%s); %s verify the controller against it",
		pin.Fingerprint, pin.From, strings.Join(Clients, ", ")), nil
}

// DockerEngine is the Docker client of the stack steps as pinning needs it; nil before docker/reachable.
func DockerEngine(cfg stack.Config) func() (Engine, error) {
	return func() (Engine, error) {
		if c, ok := cfg.Engine().(*docker.Client); ok && c != nil {
			return c, nil
		}
		return nil, errors.New("no Docker client: the step docker/reachable must run first")
	}
}
