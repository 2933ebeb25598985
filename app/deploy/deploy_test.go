package deploy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/swarm"

	"github.com/ziti-bootstrap/ziti-bootstrap/app/command"
	"github.com/ziti-bootstrap/ziti-bootstrap/backup"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/stacks"
)

// Every variable the stack files read is part of the configuration (documented, in .env.example), and the
// defaults written in the stack files (for `docker stack deploy` users) are the configuration's.
func TestStackVariablesAreConfiguration(t *testing.T) {
	names, err := StackVariables()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if _, ok := config.Lookup(n); !ok {
			t.Errorf("stack variable %s is not documented in internal/config", n)
		}
	}
	def := regexp.MustCompile(`(?:^|[^$])\$\{([A-Z_][A-Z0-9_]*):-([^}]*)\}`)
	files := []string{"spire.yml", "keycloak.yml", "openziti.yml", "config/spire/server.conf", "config/spire/agent.conf",
		"config/openziti/router-entrypoint.bash"}
	seen := 0
	for _, f := range files {
		b, err := stacks.Read(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range def.FindAllStringSubmatch(string(b), -1) {
			if strings.HasPrefix(m[1], "ZB_STACK_") {
				continue
			}
			seen++
			if v, _ := config.Lookup(m[1]); v.Default != m[2] {
				t.Errorf("%s: ${%s:-%s}, but the configuration's default is %q", f, m[1], m[2], v.Default)
			}
		}
	}
	if seen < 30 {
		t.Errorf("found only %d ${NAME:-default} references: is the pattern right?", seen)
	}
}

func TestStackConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	devPwd, devDB, mine := write("dev-pwd", "dev-ziti\n"), write("dev-db", "dev-db\n"), write("my-db", "my-db\n")
	cert := write("agent.crt", "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n")
	env := write(".env", strings.Join([]string{
		"KEYCLOAK_DB_PASSWORD_FILE=" + mine, // the operator's secret wins over the dev default
		"ZB_ENDPOINT_MODE=vip",              // and so does a setting
		"SPIRE_NODE_CA_FILE=" + cert,        // PEM values from files
		"SPIRE_UPSTREAM_CA_CERT=",           // empty, as in a copy of .env.example: the dev default applies
		"ZB_SECRETS_DIR=" + filepath.Join(dir, "none"),
	}, "\n"))
	c := &command.CLI{EnvFile: env, Set: []string{"ZITI_CTRL_PUBLISHED_PORT=21280"}}
	sc, err := LoadStack(c, &StackOptions{}, map[string]string{
		"ZITI_PWD_FILE": devPwd, "KEYCLOAK_DB_PASSWORD_FILE": devDB, "ZB_ENDPOINT_MODE": "dnsrr", "ZB_PUBLISH_MODE": "host",
		"SPIRE_UPSTREAM_CA_CERT_FILE": cert,
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"ZITI_PWD": "dev-ziti", "KEYCLOAK_DB_PASSWORD": "my-db", "ZB_ENDPOINT_MODE": "vip", "ZB_PUBLISH_MODE": "host",
		"ZITI_CTRL_PUBLISHED_PORT": "21280", "KEYCLOAK_PUBLISHED_PORT": "8080", "SPIRE_NODE_CA": strings.TrimSpace(readFile(t, cert)),
		"SPIRE_UPSTREAM_CA_CERT": strings.TrimSpace(readFile(t, cert)), "ZB_IMAGE": "ghcr.io/ziti-bootstrap/ziti-bootstrap:0.1.0",
	}
	for k, v := range want {
		if got := sc.Vars[k]; got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if _, ok := sc.Vars["SPIRE_UPSTREAM_CA_KEY"]; ok {
		t.Error("an unset secret has a value")
	}
	if sc.Docker.Host == "" || sc.WaitTimeout <= 0 {
		t.Errorf("docker settings: %+v %s", sc.Docker, sc.WaitTimeout)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func jobStack() *stacks.Stack {
	spec := swarm.ServiceSpec{Annotations: swarm.Annotations{Name: "zb-openziti_" + stacks.BootstrapService},
		TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Env: []string{"A=1", "Z=2"}}}}
	return &stacks.Stack{Name: stacks.OpenZiti, Namespace: "zb-openziti", Services: []stacks.Service{{Spec: spec}}}
}

// The operator's POLICIES_FILE and SPIRE_ENTRIES_FILE reach the bootstrap job as configs, and a changed file is
// a changed job spec (so up runs the job again); a broken file is refused before anything is deployed.
func TestJobFilesShippedToTheBootstrapJob(t *testing.T) {
	dir := t.TempDir()
	pol, err := os.ReadFile("../../examples/policies/iot-segments.yaml")
	if err != nil {
		t.Fatal(err)
	}
	polPath := filepath.Join(dir, "policies.yaml")
	if err := os.WriteFile(polPath, pol, 0o600); err != nil {
		t.Fatal(err)
	}
	st := jobStack()
	if err := AddJobFiles(st, map[string]string{"POLICIES_FILE": polPath, "TRUST_DOMAIN": "zb.test"}); err != nil {
		t.Fatal(err)
	}
	cs := st.Services[0].Spec.TaskTemplate.ContainerSpec
	if len(st.Configs) != 1 || string(st.Configs[0].Data) != string(pol) || !strings.HasPrefix(st.Configs[0].Name, "zb-openziti_bootstrap-policies_") {
		t.Fatalf("configs %v, want one holding the policies file", st.Configs)
	}
	if len(cs.Configs) != 1 || cs.Configs[0].ConfigName != st.Configs[0].Name || cs.Configs[0].File.Name != "/etc/ziti-bootstrap/policies.yaml" {
		t.Errorf("job's config references %+v", cs.Configs)
	}
	if strings.Join(cs.Env, " ") != "A=1 POLICIES_FILE=/etc/ziti-bootstrap/policies.yaml Z=2" {
		t.Errorf("job's environment %v", cs.Env)
	}

	// a changed file: another config name
	if err := os.WriteFile(polPath, append(pol, []byte("\n# changed\n")...), 0o600); err != nil {
		t.Fatal(err)
	}
	st2 := jobStack()
	if err := AddJobFiles(st2, map[string]string{"POLICIES_FILE": polPath}); err != nil {
		t.Fatal(err)
	}
	if st2.Configs[0].Name == st.Configs[0].Name {
		t.Errorf("a changed policies file kept the config name %s", st.Configs[0].Name)
	}

	// unset: nothing shipped; a stack without the job: nothing to do
	st3 := jobStack()
	if err := AddJobFiles(st3, map[string]string{}); err != nil || len(st3.Configs) != 0 {
		t.Errorf("no files set: %v, configs %v", err, st3.Configs)
	}

	// broken or missing files: every problem, naming the variable; nothing added
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("services: [ {name: x, bogus: 1} ]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	st4 := jobStack()
	err = AddJobFiles(st4, map[string]string{"POLICIES_FILE": bad, "SPIRE_ENTRIES_FILE": filepath.Join(dir, "missing.yaml"), "TRUST_DOMAIN": "zb.test"})
	var ce *config.Error
	if !errors.As(err, &ce) || len(ce.Problems) != 2 || ce.Problems[0].Var != "POLICIES_FILE" || ce.Problems[1].Var != "SPIRE_ENTRIES_FILE" {
		t.Fatalf("broken files: %v; want a config.Error naming POLICIES_FILE and SPIRE_ENTRIES_FILE", err)
	}
	if !strings.Contains(err.Error(), "missing.yaml") || len(st4.Configs) != 0 {
		t.Errorf("broken files: %v; configs added: %v", err, st4.Configs)
	}
}

// The digits of a secret whose data is one of the dev state's files are kept (0600) for the next process, found
// by a keyed hash: the file holds neither the data nor a plain hash of it. Other data is never kept.
func TestDevDigestsKeepOnlyTheStatesOwnSecrets(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	pw := filepath.Join(dir, "ziti_admin_password")
	if err := os.WriteFile(pw, []byte("generated-pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	defaults := map[string]string{"ZITI_PWD_FILE": pw, "ZB_PUBLISH_MODE": "host"}
	d, err := OpenDevDigests(dir, defaults)
	if err != nil {
		t.Fatal(err)
	}
	d.Remember("salt-a", []byte("generated-pw"), "0123abcd")
	d.Remember("salt-a", []byte("operator-given"), "89abcdef")
	if err := d.Save(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, DigestsFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("digests file: %v, mode %v", err, fi)
	}
	b, _ := os.ReadFile(filepath.Join(dir, DigestsFile))
	for _, leak := range []string{"generated-pw", "operator-given", "89abcdef", sha("generated-pw"), sha("salt-a\x00generated-pw")} {
		if strings.Contains(string(b), leak) {
			t.Errorf("the digests file holds %q:\n%s", leak, b)
		}
	}
	again, err := OpenDevDigests(dir, defaults)
	if err != nil {
		t.Fatal(err)
	}
	if h, ok := again.Lookup("salt-a", []byte("generated-pw")); !ok || h != "0123abcd" {
		t.Errorf("next process: %q %v, want 0123abcd", h, ok)
	}
	if h, ok := again.Lookup("salt-b", []byte("generated-pw")); ok {
		t.Errorf("another salt found %q", h)
	}
	if h, ok := again.Lookup("salt-a", []byte("operator-given")); ok {
		t.Errorf("data not in the state found %q", h)
	}
	// a damaged file is a cache miss, not an error
	if err := os.WriteFile(filepath.Join(dir, DigestsFile), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if d, err := OpenDevDigests(dir, defaults); err != nil {
		t.Fatal(err)
	} else if _, ok := d.Lookup("salt-a", []byte("generated-pw")); ok {
		t.Error("found in a damaged file")
	}
}

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// journalled is a Swarm whose services an interrupted restore left at 0 replicas, journalled.
type journalled struct {
	labels map[string]map[string]string
	scaled []string
}

func (j *journalled) ServicesLabelled(_ context.Context, key string) ([]string, error) {
	var out []string
	for s, l := range j.labels {
		if l[key] != "" {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out, nil
}
func (j *journalled) Replicas(context.Context, string) (uint64, error) { return 0, nil }
func (j *journalled) Scale(_ context.Context, service string, _ uint64) error {
	j.scaled = append(j.scaled, service)
	return nil
}
func (j *journalled) ServiceLabels(_ context.Context, service string) (map[string]string, error) {
	return j.labels[service], nil
}
func (j *journalled) SetServiceLabels(_ context.Context, service string, labels map[string]string) error {
	for k, v := range labels {
		if v == "" {
			delete(j.labels[service], k)
		}
	}
	return nil
}

// up brings back the services of its own stacks that an interrupted restore stopped, and leaves another
// deployment's (another --prefix on the same Swarm: its restore may be running) alone.
func TestResumeRestoresOnlyOwnStacks(t *testing.T) {
	j := &journalled{labels: map[string]map[string]string{
		"dev-openziti_ziti-controller":   {backup.LabelReplicas: "1"},
		"dev-spire_spire-server":         {backup.LabelReplicas: "1"},
		"other-openziti_ziti-controller": {backup.LabelReplicas: "1"},
		"dev-openzitix_svc":              {backup.LabelReplicas: "1"},
	}}
	var out bytes.Buffer
	c := &command.CLI{Stdout: &out, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if err := FinishInterruptedRestores(context.Background(), c, OwnServices{LabelledServices: j, Names: stacks.DefaultNames("dev-")}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"dev-openziti_ziti-controller", "dev-spire_spire-server"}; !slices.Equal(j.scaled, want) {
		t.Errorf("brought back %v, want %v", j.scaled, want)
	}
}
