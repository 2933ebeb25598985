package up

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/docker/docker/api/types/swarm"

	"github.com/ziti-bootstrap/ziti-bootstrap/app/command"
	"github.com/ziti-bootstrap/ziti-bootstrap/app/deploy"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/docker"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/exitcode"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/keycloak"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/lock"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/upgrade"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/wait"
	"github.com/ziti-bootstrap/ziti-bootstrap/stacks"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
)

// UpgradeCheckFault, when set (by tests only), fails the post-upgrade check of a service: a new version that
// started and migrated its data, and then fails a check.
var UpgradeCheckFault atomic.Pointer[func(service string, rollback bool) error]

// deployFunc deploys the loaded stacks; vars (stack variable → value) replace configured ones and reload the stack
// files; rerunJob runs the bootstrap job again.
type deployFunc func(ctx context.Context, vars map[string]string, rerunJob bool) error

// upOrUpgrade is up's deploy, as an upgrade (internal/upgrade) when a stateful server's image changes: the plan is
// shown (and only shown with --dry-run), a snapshot set taken first by the backup service, the stacks deployed
// with the bootstrap job run again, the result checked, and everything rolled back on a failure. The running
// images are those of live (the services the preflight read, before the lock as this is).
func upOrUpgrade(ctx context.Context, c *command.CLI, sc *config.Stack, o *deploy.StackOptions, withoutSnapshot bool, loaded []*stacks.Stack, live docker.ServiceLister, run deployFunc) error {
	d, err := deploy.Docker(sc)
	if err != nil {
		return err
	}
	defer d.Close()
	plan, err := planUpgrade(ctx, live, loaded)
	var ref *upgrade.Refused
	switch {
	case errors.As(err, &ref):
		return exitcode.With(exitcode.InvalidConfig, &config.Error{Problems: []config.Problem{{Var: ref.Var, Msg: ref.Detail()}}})
	case err != nil:
		return exitcode.With(exitcode.Unreachable, err)
	case plan.Empty():
		return run(ctx, nil, false)
	}
	ns := stacks.DefaultNames(o.Prefix)[stacks.OpenZiti]
	env := &swarmUpgrade{c: c, d: d, sc: sc, o: o, deploy: run, namespace: ns, backupService: ns + "_" + stacks.BackupService}
	if plan.Snapshot() {
		if _, err := env.backupContainer(ctx); err != nil {
			if !withoutSnapshot {
				return exitcode.With(exitcode.InvalidConfig, &config.Error{Problems: []config.Problem{{Var: "BACKUP_SCHEDULE", Msg: fmt.Sprintf(
					"%s: up takes a snapshot set of %s before this upgrade through the scheduled backup service, and %v; deploy it first (set BACKUP_SCHEDULE and S3_*, see `ziti-bootstrap backup --help`, and run up with the current versions), or pass --upgrade-without-snapshot (a rollback then cannot put the data back)",
					strings.Join(upgradeSummary(plan), "; "), strings.Join(plan.Sources, ", "), err)}}})
			}
			c.Log.Warn("upgrade without a snapshot (--upgrade-without-snapshot): a rollback restores the previous versions, not their data", "reason", err.Error())
			plan.Sources = nil
			for i := range plan.Steps {
				plan.Steps[i].Restore = false
			}
		}
	}
	lines := plan.Lines(env.backupService)
	if o.DryRun {
		w := c.Stdout
		if c.Output == "json" { // stdout carries the report
			w = c.Stderr
		}
		for _, l := range lines {
			fmt.Fprintln(w, l)
		}
		return run(ctx, nil, false)
	}
	for _, l := range lines {
		c.Log.Info(l)
	}
	set, err := upgrade.Run(ctx, plan, env, c.Log)
	var failed *upgrade.Failed
	switch {
	case errors.As(err, &failed):
		return exitcode.With(exitcode.StepFailed, failed)
	case err != nil:
		if code, ok := exitcode.Carried(err); ok {
			return exitcode.With(code, err)
		}
		return exitcode.With(exitcode.For(err), err)
	}
	c.Log.Info("upgrade done", "servers", strings.Join(upgradeSummary(plan), "; "), "preUpgradeSet", set)
	return nil
}

// upgradeSummary is "name from → to" of each step.
func upgradeSummary(p upgrade.Plan) []string {
	var out []string
	for _, st := range p.Steps {
		out = append(out, fmt.Sprintf("%s %s → %s", st.Name, st.From, st.To))
	}
	return out
}

// planUpgrade compares the stateful servers' running images with those of the loaded stacks.
func planUpgrade(ctx context.Context, c docker.ServiceLister, loaded []*stacks.Stack) (upgrade.Plan, error) {
	var running []upgrade.Running
	namespaces := make([]string, len(loaded))
	for i, st := range loaded {
		namespaces[i] = st.Namespace
	}
	live, err := docker.ServicesByNamespace(ctx, c, namespaces...)
	if err != nil {
		return upgrade.Plan{}, fmt.Errorf("list the services of the stacks: %w", err)
	}
	for _, st := range loaded {
		svcs := live[st.Namespace]
		for _, srv := range upgrade.Servers {
			if srv.Stack != st.Name {
				continue
			}
			name := st.Namespace + "_" + srv.Key
			i := slices.IndexFunc(st.Services, func(s stacks.Service) bool { return s.Spec.Name == name })
			if i < 0 {
				continue
			}
			r := upgrade.Running{Server: srv, Service: name, To: st.Services[i].Spec.TaskTemplate.ContainerSpec.Image}
			if j := slices.IndexFunc(svcs, func(s swarm.Service) bool { return s.Spec.Name == name }); j >= 0 && svcs[j].Spec.TaskTemplate.ContainerSpec != nil {
				r.From = svcs[j].Spec.TaskTemplate.ContainerSpec.Image
				if srv.Key == "spire-server" {
					was, now := envValue(svcs[j].Spec, "SPIRE_DATASTORE_SUFFIX"), envValue(st.Services[i].Spec, "SPIRE_DATASTORE_SUFFIX")
					r.FreshData = was != now
					r.Previous = map[string]string{"SPIRE_DATASTORE_SUFFIX": was}
				}
			}
			running = append(running, r)
		}
	}
	return upgrade.Make(running)
}

// envValue is the value of the variable name in a service's environment.
func envValue(spec swarm.ServiceSpec, name string) string {
	if spec.TaskTemplate.ContainerSpec == nil {
		return ""
	}
	for _, kv := range spec.TaskTemplate.ContainerSpec.Env {
		if v, ok := strings.CutPrefix(kv, name+"="); ok {
			return v
		}
	}
	return ""
}

// swarmUpgrade is the upgrade's Env on the Swarm: snapshots and restores run by the scheduled backup service's
// container (where the volumes are mounted and the databases reached), deploys by up.
type swarmUpgrade struct {
	c             *command.CLI
	d             *docker.Client
	sc            *config.Stack
	o             *deploy.StackOptions
	deploy        deployFunc
	namespace     string // the OpenZiti stack's, where the backup service runs
	backupService string
}

var _ upgrade.Env = (*swarmUpgrade)(nil)

// backupContainer is a running container of the backup service on this node.
func (e *swarmUpgrade) backupContainer(ctx context.Context) (string, error) {
	svcs, err := e.d.Services(ctx, e.namespace)
	if err != nil {
		return "", err
	}
	i := slices.IndexFunc(svcs, func(s swarm.Service) bool { return s.Spec.Name == e.backupService })
	if i < 0 {
		return "", fmt.Errorf("the Swarm has no service %s", e.backupService)
	}
	cs, err := e.d.Containers(ctx, e.namespace)
	if err != nil {
		return "", err
	}
	j := slices.IndexFunc(cs, func(c docker.Container) bool { return c.ServiceID == svcs[i].ID && c.State == "running" })
	if j < 0 {
		return "", fmt.Errorf("no container of %s runs on the node of DOCKER_HOST (%s)", e.backupService, e.sc.Docker.Host)
	}
	return cs[j].ID, nil
}

// exec runs ziti-bootstrap with args in the backup service's container; under the lock up holds (Hold), the
// command acts under it (ZB_LOCK_PARENT).
func (e *swarmUpgrade) exec(ctx context.Context, args ...string) (string, error) {
	id, err := e.backupContainer(ctx)
	if err != nil {
		return "", err
	}
	var env []string
	if l := lock.FromContext(ctx); l != nil && l.Check() == nil {
		env = append(env, "ZB_LOCK_PARENT="+l.Holder().Run)
	}
	res, err := e.d.Exec(ctx, id, append([]string{"ziti-bootstrap"}, args...), env...)
	if err != nil {
		return "", err
	}
	if res.ExitCode != 0 {
		return "", fmt.Errorf("ziti-bootstrap %s in %s: exit %d: %s", args[0], e.backupService, res.ExitCode, lastLine(res.Stderr))
	}
	return res.Stdout, nil
}

var setComplete = regexp.MustCompile(`(?m)^set (\S+) complete`)

func (e *swarmUpgrade) Snapshot(ctx context.Context, sources []string) (string, error) {
	out, err := e.exec(ctx, "backup", "--schedule=", "--no-prune", "--sources", strings.Join(sources, ","))
	if err != nil {
		return "", err
	}
	m := setComplete.FindStringSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("the backup said no set was completed: %s", lastLine(out))
	}
	return m[1], nil
}

func (e *swarmUpgrade) Restore(ctx context.Context, set string, sources []string) error {
	_, err := e.exec(ctx, "restore", set, "--yes", "--services-stopped", "--sources", strings.Join(sources, ","))
	return err
}

// Hold runs fn under the lock in the Swarm (the one apply, up, backup and restore share), or without it, with a
// warning, when it cannot be had: the rollback must run all the same.
func (e *swarmUpgrade) Hold(ctx context.Context, fn func(context.Context) error) error {
	ran := false
	err := deploy.UnderLock(ctx, e.c, e.sc, steps.Apply, func(ctx context.Context) error {
		ran = true
		return fn(ctx)
	})
	if !ran {
		e.c.Log.Warn("upgrade: the check and the rollback run without the lock, which could not be taken", "error", err)
		return fn(ctx)
	}
	return err
}

func (e *swarmUpgrade) Stop(ctx context.Context, service string) error {
	return e.d.Scale(ctx, service, 0)
}

func (e *swarmUpgrade) Deploy(ctx context.Context, vars map[string]string) error {
	err := e.deploy(ctx, vars, true)
	if errors.Is(err, lock.ErrHeld) { // another run held the lock: up wrote nothing
		return &upgrade.NotStarted{Err: err}
	}
	return err
}

// Check logs in to Keycloak as its administrator (an OIDC password grant) when the Keycloak stack is deployed;
// the bootstrap job, run again by Deploy, has already checked that every configuration step converged.
func (e *swarmUpgrade) Check(ctx context.Context, p upgrade.Plan, rollback bool) error {
	kc := stacks.DefaultNames(e.o.Prefix)[stacks.Keycloak] + "_keycloak"
	if fault := UpgradeCheckFault.Load(); fault != nil {
		for _, st := range p.Steps {
			if err := (*fault)(st.Service, rollback); err != nil {
				return &upgrade.CheckError{Service: st.Service, Err: err}
			}
		}
	}
	if e.o.ExternalKeycloak || !slices.ContainsFunc(p.Steps, func(st upgrade.Step) bool { return st.Stack == stacks.Keycloak }) {
		return nil
	}
	u, err := url.Parse(e.sc.Vars["KEYCLOAK_PUBLIC_URL"])
	if err != nil {
		return &upgrade.CheckError{Service: kc, Err: fmt.Errorf("KEYCLOAK_PUBLIC_URL: %w", err)}
	}
	user := e.sc.Vars["KEYCLOAK_ADMIN_USER"]
	if user == "" {
		user = "admin"
	}
	opts := keycloak.Options{URL: u, AdminUser: user, AdminPassword: config.NewSecret(e.sc.Vars["KEYCLOAK_ADMIN_PASSWORD"])}
	if e.sc.Vars["KEYCLOAK_PUBLISH"] == "https" { // the published listener is Keycloak's own: its certificate, of KEYCLOAK_CA
		opts.CA = []byte(e.sc.Vars["KEYCLOAK_CA"])
	}
	_, version, err := keycloak.Connect(ctx, opts,
		wait.Target{What: "Keycloak's admin login after the upgrade", Deadline: 3 * time.Minute})
	if err != nil {
		return &upgrade.CheckError{Service: kc, Err: fmt.Errorf("OIDC login of its administrator: %w", err)}
	}
	e.c.Log.Info("upgrade check: Keycloak's administrator logged in", "url", u.Redacted(), "version", version)
	return nil
}

// lastLine is the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
