package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/swarm"

	"github.com/ziti-bootstrap/ziti-bootstrap/app/capin"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/exitcode"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/testutil"
	"github.com/ziti-bootstrap/ziti-bootstrap/stacks"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps/stack"
)

// otherCA is a CA certificate (PEM) that issued nothing the servers present.
func otherCA(t *testing.T) []byte {
	key := testutil.NewKey(t)
	return []byte(testutil.CertPEM(testutil.Issue(t, nil, nil, key, "another CA", "", true)))
}

// openZitiStack loads the OpenZiti stack as up does, with the backup service.
func openZitiStack(t *testing.T) *stacks.Stack {
	t.Helper()
	st, err := stacks.Load(context.Background(), stacks.OpenZiti, stacks.Options{Names: stacks.DefaultNames("t-"), Vars: map[string]string{
		"ZITI_PWD": "ziti", "SPIRE_NODE_CA": "ca", "KEYCLOAK_ADMIN_PASSWORD": "kc", "KEYCLOAK_ADMIN_CLIENT_SECRET": "kcc", "SPIRE_UPSTREAM_CA_KEY": "key",
		"KEYCLOAK_DB_PASSWORD": "db", "S3_SECRET_ACCESS_KEY": "s3", "BACKUP_ENCRYPTION_KEY": "bk", "BACKUP_SCHEDULE": "@daily", "KEYCLOAK_CA": "kc ca"}})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// Every service of the OpenZiti stack that calls the controller with the admin password verifies it against the
// pinned CA, shipped as one config; none trusts the controller on first use.
func TestControllerCAPinnedInTheStack(t *testing.T) {
	ca := otherCA(t)
	pin, err := capin.New(ca, "test")
	if err != nil {
		t.Fatal(err)
	}
	if len(pin.Fingerprint) != 32*3-1 {
		t.Errorf("fingerprint %q", pin.Fingerprint)
	}
	st := openZitiStack(t)
	if err := pin.Give(st); err != nil {
		t.Fatal(err)
	}
	var pinned []string
	for _, o := range st.Configs {
		if o.Key == capin.Key {
			pinned = append(pinned, o.Name)
			if string(o.Data) != string(ca) {
				t.Errorf("config %s holds %q", o.Name, o.Data)
			}
		}
	}
	if len(pinned) != 1 {
		t.Fatalf("configs of the pin: %v, want one", pinned)
	}
	for _, s := range st.Services {
		cs := s.Spec.TaskTemplate.ContainerSpec
		for _, kv := range cs.Env {
			if strings.HasPrefix(kv, "ZITI_CA_TOFU=") {
				t.Errorf("service %s trusts the controller on first use: %s", s.Spec.Name, kv)
			}
		}
		calls := slices.ContainsFunc(cs.Env, func(kv string) bool { return strings.HasPrefix(kv, "ZITI_CTRL_URL=") })
		mounted := slices.ContainsFunc(cs.Configs, func(r *swarm.ConfigReference) bool {
			return r.ConfigName == pinned[0] && r.File.Name == capin.Target
		})
		if verifies := slices.Contains(cs.Env, "ZITI_CA_FILE="+capin.Target) && mounted; calls != verifies {
			t.Errorf("service %s: calls the controller %v, verifies it against the pin %v (env %v)", s.Spec.Name, calls, verifies, cs.Env)
		}
	}
	if err := pin.Give(st); err == nil {
		t.Errorf("the pin given twice to the same services: no error")
	}

	// what is not a CA bundle is refused, naming where it came from
	for _, bad := range []string{"", "not pem", strings.Replace(string(ca), "CERTIFICATE", "PRIVATE KEY", 2), string(ca) + "trailing"} {
		if _, err := capin.New([]byte(bad), "the test's file"); err == nil || !strings.Contains(err.Error(), "the test's file") {
			t.Errorf("capin.New(%.20q): %v", bad, err)
		}
	}
}

// The bootstrap job's settings for the controller, as the stack gives them with a pin, verify the controller:
// with the test bed controller's own CA pinned the job reaches it; with another CA at the same address it stops
// with a verification error naming ZITI_CA_FILE (exit 2), before it sends the admin password.
func TestJobRefusesAControllerOfAnotherCA(t *testing.T) {
	if testing.Short() {
		t.Skip("the test bed's controller")
	}
	env, in := bedEnv(t)
	bedCA, err := os.ReadFile(in.Ziti.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		ca   []byte
		code int
	}{{"the controller's CA", bedCA, 0}, {"another CA", otherCA(t), exitcode.InvalidConfig}} {
		t.Run(tt.name, func(t *testing.T) {
			pin, err := capin.New(tt.ca, "test")
			if err != nil {
				t.Fatal(err)
			}
			st := openZitiStack(t)
			if err := pin.Give(st); err != nil {
				t.Fatal(err)
			}
			// the job's own ZITI_CA_* settings; the file it names holds the config's data
			args := []string{"status", "--env-file", env, "--set", "ZITI_CA_FILE=", "--set", "ZITI_CA_TOFU=false"}
			for _, kv := range jobEnv(t, st) {
				k, v, _ := strings.Cut(kv, "=")
				if k == "ZITI_CA_FILE" {
					v = filepath.Join(t.TempDir(), "ca.pem")
					if err := os.WriteFile(v, tt.ca, 0o600); err != nil {
						t.Fatal(err)
					}
				}
				if strings.HasPrefix(k, "ZITI_CA_") {
					args = append(args, "--set", k+"="+v)
				}
			}
			code, out, errs := cli(t, args...)
			if code != tt.code {
				t.Fatalf("status with the job's settings and %s: exit %d, want %d\n%s\n%s", tt.name, code, tt.code, out, lastLines(errs, 10))
			}
			if tt.code != 0 && (!strings.Contains(out+errs, "ZITI_CA_FILE") || !strings.Contains(out+errs, "does not verify")) {
				t.Errorf("the error does not say the controller's certificate does not verify against ZITI_CA_FILE:\n%s\n%s", out, lastLines(errs, 10))
			}
		})
	}
}

// jobEnv is the environment of the bootstrap job of st.
func jobEnv(t *testing.T, st *stacks.Stack) []string {
	t.Helper()
	for _, s := range st.Services {
		if s.Spec.Name == st.Namespace+"_"+stacks.BootstrapService {
			return s.Spec.TaskTemplate.ContainerSpec.Env
		}
	}
	t.Fatalf("stack %s has no bootstrap job", st.Name)
	return nil
}

// controllerCAPinned checks the pin of an up --dev run: up's report shows the fingerprint of the controller's own
// CA (read here from its container) and where up read it (from: "PKI volume" or "Swarm config"); every service
// that calls the controller mounts the pin and none trusts on first use.
func (d *devSystem) controllerCAPinned(rep steps.Report, from string) {
	t := d.tb
	t.Helper()
	ctx := context.Background()
	ns := d.names[stacks.OpenZiti]
	svcs, err := d.c.Services(ctx, ns)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := d.c.Containers(ctx, ns)
	if err != nil {
		t.Fatal(err)
	}
	var own *capin.Pin
	for _, s := range svcs {
		if s.Spec.Name == ns+"_"+capin.ControllerService {
			for _, c := range cs {
				if c.ServiceID == s.ID && c.State == "running" {
					data, err := d.c.ReadContainerFile(ctx, c.ID, capin.File, capin.MaxBundle)
					if err != nil {
						t.Fatal(err)
					}
					if own, err = capin.New(data, "the controller's container"); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
	}
	if own == nil {
		t.Fatalf("no running controller container in %s", ns)
	}
	notes := strings.Join(d.notes(rep, capin.StepName), "\n")
	if !strings.Contains(notes, "controller CA pinned: SHA-256 "+own.Fingerprint+" (") || !strings.Contains(notes, from) {
		t.Errorf("up's report of the pin: %q; want the fingerprint %s of the controller's CA, read from %s", notes, own.Fingerprint, from)
	}
	for _, s := range svcs {
		name := strings.TrimPrefix(s.Spec.Name, ns+"_")
		if !slices.Contains(capin.Clients, name) {
			continue
		}
		env := s.Spec.TaskTemplate.ContainerSpec.Env
		if !slices.Contains(env, "ZITI_CA_FILE="+capin.Target) || slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, "ZITI_CA_TOFU=") }) {
			t.Errorf("service %s does not verify the controller against the pin: %v", s.Spec.Name, env)
		}
	}
}

// up's steps start each stack on what it needs: SPIRE and Keycloak at once, the controller alone (and the pin of
// its CA) beside them, the rest of OpenZiti once SPIRE is healthy and the CA pinned; the order stays the report's.
func TestUpStepsStartEachStackOnWhatItNeeds(t *testing.T) {
	vars := map[string]string{"ZITI_PWD": "ziti", "SPIRE_NODE_CA": "ca", "KEYCLOAK_ADMIN_PASSWORD": "kc", "KEYCLOAK_ADMIN_CLIENT_SECRET": "kcc", "SPIRE_UPSTREAM_CA_KEY": "key",
		"SPIRE_UPSTREAM_CA_CERT": "cert", "KEYCLOAK_DB_PASSWORD": "db", "S3_SECRET_ACCESS_KEY": "s3", "BACKUP_ENCRYPTION_KEY": "bk",
		"KEYCLOAK_CA": "keycloak ca", "KEYCLOAK_TLS_CERT": "keycloak cert", "KEYCLOAK_TLS_KEY": "keycloak key"}
	var loaded []*stacks.Stack
	for _, n := range stacks.All {
		st, err := stacks.Load(context.Background(), n, stacks.Options{Names: stacks.DefaultNames("t-"), Vars: vars})
		if err != nil {
			t.Fatal(err)
		}
		loaded = append(loaded, st)
	}
	only, err := capin.ControllerOnlyStack(context.Background(), loaded, stacks.Options{Names: stacks.DefaultNames("t-"), Vars: vars})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range capin.Steps(stack.Config{}, nil, only, "first", loaded...) {
		got = append(got, s.Name()+" <- "+strings.Join(s.DependsOn(), ","))
	}
	want := []string{"stack/spire <- first", "stack/keycloak <- first", "ziti/controller-first <- first", "ziti/ca-pin <- ziti/controller-first",
		"stack/openziti <- first,stack/spire,ziti/ca-pin"}
	if !slices.Equal(got, want) {
		t.Errorf("steps\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
