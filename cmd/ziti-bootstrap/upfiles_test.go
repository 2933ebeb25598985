package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/swarm"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/stacks"
)

func jobStack() *stacks.Stack {
	spec := swarm.ServiceSpec{Annotations: swarm.Annotations{Name: "zb-openziti_" + bootstrapService},
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
	if err := addJobFiles(st, map[string]string{"POLICIES_FILE": polPath, "TRUST_DOMAIN": "zb.test"}); err != nil {
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
	if err := addJobFiles(st2, map[string]string{"POLICIES_FILE": polPath}); err != nil {
		t.Fatal(err)
	}
	if st2.Configs[0].Name == st.Configs[0].Name {
		t.Errorf("a changed policies file kept the config name %s", st.Configs[0].Name)
	}

	// unset: nothing shipped; a stack without the job: nothing to do
	st3 := jobStack()
	if err := addJobFiles(st3, map[string]string{}); err != nil || len(st3.Configs) != 0 {
		t.Errorf("no files set: %v, configs %v", err, st3.Configs)
	}

	// broken or missing files: every problem, naming the variable; nothing added
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("services: [ {name: x, bogus: 1} ]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	st4 := jobStack()
	err = addJobFiles(st4, map[string]string{"POLICIES_FILE": bad, "SPIRE_ENTRIES_FILE": filepath.Join(dir, "missing.yaml"), "TRUST_DOMAIN": "zb.test"})
	var ce *config.Error
	if !errors.As(err, &ce) || len(ce.Problems) != 2 || ce.Problems[0].Var != "POLICIES_FILE" || ce.Problems[1].Var != "SPIRE_ENTRIES_FILE" {
		t.Fatalf("broken files: %v; want a config.Error naming POLICIES_FILE and SPIRE_ENTRIES_FILE", err)
	}
	if !strings.Contains(err.Error(), "missing.yaml") || len(st4.Configs) != 0 {
		t.Errorf("broken files: %v; configs added: %v", err, st4.Configs)
	}
}

// With BACKUP_SCHEDULE set, up checks what the backup service will read before anything is deployed: every
// problem at once, naming its variable, exit code 2.
func TestUpChecksTheBackupServiceSettings(t *testing.T) {
	env := filepath.Join(t.TempDir(), ".env")
	if err := os.WriteFile(env, []byte("BACKUP_SCHEDULE=@daily\nBACKUP_KEEP_LAST=-1\nBACKUP_ENCRYPTION_KEY=short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errs := cli(t, "up", "--dry-run", "--external-keycloak", "--env-file", env)
	if code != 2 {
		t.Fatalf("exit %d, want 2\n%s", code, errs)
	}
	for _, want := range []string{"BACKUP_KEEP_LAST", "S3_ENDPOINT", "BACKUP_ENCRYPTION_KEY", "openssl rand", "BACKUP_SOURCES", "--external-keycloak"} {
		if !strings.Contains(errs, want) {
			t.Errorf("error lacks %q:\n%s", want, errs)
		}
	}
	if strings.Contains(errs, "short") {
		t.Errorf("the key's value is printed:\n%s", errs)
	}
}
