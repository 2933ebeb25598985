package policies

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sync"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/policyfile"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/ziti"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps/reach"
)

// Name is the step's name; it depends on ZitiReachable.
const (
	Name          = "ziti/policies"
	ZitiReachable = reach.Ziti
)

// Change kinds: those of the policy file's objects (policyfile).
const (
	KindConfig                  = policyfile.KindConfig
	KindService                 = policyfile.KindService
	KindPostureCheck            = policyfile.KindPostureCheck
	KindIdentity                = policyfile.KindIdentity
	KindServicePolicy           = policyfile.KindServicePolicy
	KindEdgeRouterPolicy        = policyfile.KindEdgeRouterPolicy
	KindServiceEdgeRouterPolicy = policyfile.KindServiceEdgeRouterPolicy
)

// Ownership: objects the step owns carry the tag OwnerTag = Config.Owner (DefaultOwner).
const (
	OwnerTag     = "ziti-bootstrap"
	DefaultOwner = "policies"
	// DefaultParallel is how many writes of one phase run at once.
	DefaultParallel = 4
)

// AttributesTag is the identity tag listing, comma-separated, the role attributes the step with this owner added
// to the identity (and so may remove again): "ziti-bootstrap.policies.roleAttributes" for DefaultOwner.
func AttributesTag(owner string) string { return OwnerTag + "." + owner + ".roleAttributes" }

// API is what the step needs of the controller; *ziti.Client has it.
type API interface {
	ListConfigTypes(ctx context.Context, filter string) ([]ziti.ConfigType, error)
	ListConfigs(ctx context.Context, filter string) ([]ziti.Config, error)
	CreateConfig(ctx context.Context, cfg ziti.Config) (string, error)
	UpdateConfig(ctx context.Context, id string, cfg ziti.Config) error
	DeleteConfig(ctx context.Context, id string) error

	ListServices(ctx context.Context, filter string) ([]ziti.Service, error)
	CreateService(ctx context.Context, s ziti.Service) (string, error)
	UpdateService(ctx context.Context, id string, s ziti.Service) error
	DeleteService(ctx context.Context, id string) error

	ListPostureChecks(ctx context.Context, filter string) ([]ziti.PostureCheck, error)
	CreatePostureCheck(ctx context.Context, pc ziti.PostureCheck) (string, error)
	UpdatePostureCheck(ctx context.Context, id string, pc ziti.PostureCheck) error
	DeletePostureCheck(ctx context.Context, id string) error

	ListServicePolicies(ctx context.Context, filter string) ([]ziti.ServicePolicy, error)
	CreateServicePolicy(ctx context.Context, sp ziti.ServicePolicy) (string, error)
	UpdateServicePolicy(ctx context.Context, id string, sp ziti.ServicePolicy) error
	DeleteServicePolicy(ctx context.Context, id string) error

	ListEdgeRouterPolicies(ctx context.Context, filter string) ([]ziti.EdgeRouterPolicy, error)
	CreateEdgeRouterPolicy(ctx context.Context, erp ziti.EdgeRouterPolicy) (string, error)
	UpdateEdgeRouterPolicy(ctx context.Context, id string, erp ziti.EdgeRouterPolicy) error
	DeleteEdgeRouterPolicy(ctx context.Context, id string) error

	ListServiceEdgeRouterPolicies(ctx context.Context, filter string) ([]ziti.ServiceEdgeRouterPolicy, error)
	CreateServiceEdgeRouterPolicy(ctx context.Context, serp ziti.ServiceEdgeRouterPolicy) (string, error)
	UpdateServiceEdgeRouterPolicy(ctx context.Context, id string, serp ziti.ServiceEdgeRouterPolicy) error
	DeleteServiceEdgeRouterPolicy(ctx context.Context, id string) error

	ListIdentities(ctx context.Context, filter string) ([]ziti.Identity, error)
	SetIdentityRoleAttributes(ctx context.Context, id string, attrs []string, tags map[string]any) error
	ListEdgeRouters(ctx context.Context, filter string) ([]ziti.EdgeRouter, error)
}

var _ API = (*ziti.Client)(nil)

// Config is what the step converges to.
type Config struct {
	// Policy is the validated policy file (policyfile.LoadFile, Parse). Required; an empty policy deletes every owned
	// object and removes every attribute the step added.
	Policy *policyfile.Policy
	// Owner is the value of the OwnerTag tag on owned objects (default DefaultOwner). Only change it to run
	// independent policy files against one controller (tests do, to stay out of each other's way).
	Owner string
	// Parallel is how many writes of one phase run at once (default DefaultParallel).
	Parallel int
	// Name is the step's name (default Name): two steps of different owners run in one apply under two names.
	Name string
	// leaveForeign: a declared router policy whose name an object made elsewhere has is left out, with a note
	// (the default router policies, which a quickstart controller has already), instead of failing the plan.
	leaveForeign bool
}

// Step reconciles the controller to a policy file. Create it with New.
type Step struct {
	api      API
	pol      *policyfile.Policy
	owner    string
	parallel int
	name     string
	leave    bool
}

var _ steps.Step = (*Step)(nil)

var ownerRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// New checks cfg (no call is made) and returns the step, which uses api (a client built without a call, such
// as ziti.Dial's: ZitiReachable checks that it reaches the controller before this step plans).
func New(api API, cfg Config) (*Step, error) {
	var errs []error
	if api == nil {
		errs = append(errs, errors.New("a Ziti client is required"))
	}
	if cfg.Policy == nil {
		errs = append(errs, errors.New("no policy: load one with LoadFile"))
	}
	if cfg.Owner == "" {
		cfg.Owner = DefaultOwner
	}
	if !ownerRE.MatchString(cfg.Owner) {
		errs = append(errs, fmt.Errorf("owner %q: expected 1-63 characters a-z 0-9 . _ -", cfg.Owner))
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = DefaultParallel
	}
	if cfg.Name == "" {
		cfg.Name = Name
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s: %w", Name, errors.Join(errs...))
	}
	return &Step{api: api, pol: cfg.Policy, owner: cfg.Owner, parallel: cfg.Parallel, name: cfg.Name, leave: cfg.leaveForeign}, nil
}

func (s *Step) Name() string        { return s.name }
func (s *Step) DependsOn() []string { return []string{ZitiReachable} }

// Policy is the policy the step converges to.
func (s *Step) Policy() *policyfile.Policy { return s.pol }

// Plan lists the controller's objects and returns the creates, updates and deletes that make the owned ones
// (and the attributes the file manages on identities) match the policy. It writes nothing.
func (s *Step) Plan(ctx context.Context) (*steps.Plan, error) {
	api := s.api
	obs, err := observe(ctx, api)
	if err != nil {
		return nil, err
	}
	pol, left := s.pol, []string(nil)
	if s.leave {
		pol, left = leaveForeignRouterPolicies(s.pol, s.owner, obs)
	}
	r, err := reconcile(pol, s.owner, obs)
	if err != nil {
		return nil, err
	}
	r.notes = append(left, r.notes...)
	changes := make([]steps.Change, len(r.ops))
	for i, o := range r.ops {
		changes[i] = o.change
	}
	ops, res, parallel := r.ops, r.ids, s.parallel
	return steps.NewPlan(changes, func(ctx context.Context) error { return apply(ctx, api, ops, res, parallel) }).AddNotes(r.notes...), nil
}

// observed is the controller's state, as far as the step looks at it.
type observed struct {
	configTypes []ziti.ConfigType
	configs     []ziti.Config
	services    []ziti.Service
	posture     []ziti.PostureCheck
	identities  []ziti.Identity
	routers     []ziti.EdgeRouter
	sps         []ziti.ServicePolicy
	erps        []ziti.EdgeRouterPolicy
	serps       []ziti.ServiceEdgeRouterPolicy
}

// observe lists everything the step compares, concurrently.
func observe(ctx context.Context, api API) (*observed, error) {
	o := &observed{}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	run := func(f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	run(func() (err error) { o.configTypes, err = api.ListConfigTypes(ctx, ""); return })
	run(func() (err error) { o.configs, err = api.ListConfigs(ctx, ""); return })
	run(func() (err error) { o.services, err = api.ListServices(ctx, ""); return })
	run(func() (err error) { o.posture, err = api.ListPostureChecks(ctx, ""); return })
	run(func() (err error) { o.identities, err = api.ListIdentities(ctx, ""); return })
	run(func() (err error) { o.routers, err = api.ListEdgeRouters(ctx, ""); return })
	run(func() (err error) { o.sps, err = api.ListServicePolicies(ctx, ""); return })
	run(func() (err error) { o.erps, err = api.ListEdgeRouterPolicies(ctx, ""); return })
	run(func() (err error) { o.serps, err = api.ListServiceEdgeRouterPolicies(ctx, ""); return })
	wg.Wait()
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return o, nil
}

// op is one planned change and the call that carries it out. Ops of one phase are independent of each other
// and run concurrently; phases run in order.
type op struct {
	phase  int
	change steps.Change
	run    func(ctx context.Context, api API, ids *resolver) error
}

// Phases: configs and posture checks, then services and identities' attributes, then policies; deletes in
// reverse: policies, then services and posture checks, then configs.
const (
	phaseConfigs = iota
	phaseServices
	phasePolicies
	phaseDeletePolicies
	phaseDeleteServices
	phaseDeleteConfigs
)

// apply carries out ops phase by phase. A failed op does not stop the others (those that need its object fail
// in turn, saying so); all failures are joined.
func apply(ctx context.Context, api API, ops []op, ids *resolver, parallel int) error {
	var errs []error
	for start := 0; start < len(ops); {
		end := start
		for end < len(ops) && ops[end].phase == ops[start].phase {
			end++
		}
		errs = append(errs, runPhase(ctx, api, ops[start:end], ids, parallel)...)
		start = end
		if ctx.Err() != nil {
			errs = append(errs, ctx.Err())
			break
		}
	}
	return errors.Join(errs...)
}

func runPhase(ctx context.Context, api API, ops []op, ids *resolver, parallel int) []error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs = make([]error, len(ops))
		sem  = make(chan struct{}, parallel)
	)
	for i, o := range ops {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			err := o.run(ctx, api, ids)
			if o.change.Action == steps.Delete && ziti.IsNotFound(err) {
				err = nil // already gone is what we wanted
			}
			if err != nil {
				mu.Lock()
				errs[i] = fmt.Errorf("%s %s %s: %w", o.change.Action, o.change.Kind, o.change.Key, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	var out []error
	for _, e := range errs {
		if e != nil {
			out = append(out, e)
		}
	}
	return out
}

// resolver maps names to ids for roles and config references: seeded from the lists of the plan, completed by
// the creates of the apply.
type resolver struct {
	mu  sync.Mutex
	ids map[string]map[string]string // kind → name → id
}

func newResolver() *resolver { return &resolver{ids: map[string]map[string]string{}} }

func (r *resolver) set(kind, name, id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ids[kind] == nil {
		r.ids[kind] = map[string]string{}
	}
	r.ids[kind][name] = id
}

func (r *resolver) get(kind, name string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if id := r.ids[kind][name]; id != "" {
		return id, nil
	}
	return "", fmt.Errorf("%s %q does not exist (if this run was to create it, that failed: see its error)", kindWord(kind), name)
}

// roles turns "@name" roles into the "@id" roles the controller wants.
func (r *resolver) roles(kind string, roles []string) ([]string, error) {
	out := make([]string, 0, len(roles))
	for _, role := range roles {
		if len(role) > 1 && role[0] == '@' {
			id, err := r.get(kind, role[1:])
			if err != nil {
				return nil, err
			}
			role = "@" + id
		}
		out = append(out, role)
	}
	return out, nil
}

func kindWord(kind string) string {
	switch kind {
	case KindConfig:
		return "config"
	case KindService:
		return "service"
	case KindPostureCheck:
		return "posture check"
	case KindIdentity:
		return "identity"
	case KindServicePolicy:
		return "service policy"
	case KindEdgeRouterPolicy:
		return "edge router policy"
	case KindServiceEdgeRouterPolicy:
		return "service edge router policy"
	case policyfile.RefRouter:
		return "edge router"
	case kindConfigType:
		return "config type"
	}
	return kind
}

const kindConfigType = "config type"
