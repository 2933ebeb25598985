package deploy

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/swarm"

	"github.com/ziti-bootstrap/ziti-bootstrap/app/command"
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
