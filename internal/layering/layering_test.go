package layering

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/ziti-bootstrap/ziti-bootstrap/"

// deps lists the module's packages that pkgs import, directly or not (go list -deps), without test files.
func deps(t *testing.T, pkgs ...string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, p := range pkgs {
		cmd := exec.Command("go", append([]string{"list", "-deps"}, module+p)...)
		b, err := cmd.Output()
		if err != nil {
			var stderr string
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = string(ee.Stderr)
			}
			t.Fatalf("go list -deps %s: %v\n%s", p, err, stderr)
		}
		for _, d := range strings.Fields(string(b)) {
			if strings.HasPrefix(d, module) {
				out[p] = append(out[p], strings.TrimPrefix(d, module))
			}
		}
	}
	return out
}

// forbidden reports the dependencies of each package that are one of the banned packages or inside one.
func forbidden(t *testing.T, graph map[string][]string, banned ...string) {
	t.Helper()
	for p, ds := range graph {
		for _, d := range ds {
			for _, b := range banned {
				if d == b || strings.HasPrefix(d, b+"/") {
					t.Errorf("%s imports %s (directly or through another package): not allowed on its floor", p, d)
				}
			}
		}
	}
}

// The clients of external systems return their own errors (and the leaf invalid.Error, redact.Secret); mapping
// to configuration variables and choosing steps happen above them.
func TestClientsImportNeitherConfigNorSteps(t *testing.T) {
	graph := deps(t, "internal/ziti", "internal/keycloak", "internal/s3store", "internal/lock", "backup",
		"internal/spire", "internal/docker")
	forbidden(t, graph, "internal/config", "steps", "app")
}

// The composition root (app) builds the clients and the steps: it sits above the steps, which never import it.
func TestStepsDoNotImportTheCompositionRoot(t *testing.T) {
	graph := deps(t, "steps", "steps/keycloakrealm", "steps/zitioidc", "steps/spireca", "steps/spireentries", "steps/policies",
		"steps/reach", "steps/stack")
	forbidden(t, graph, "app", "cmd")
}

// backup and restore report their progress as events (internal/progress); the live view that draws them sits
// above: the code that does the work never imports it.
func TestWorkDoesNotImportTheView(t *testing.T) {
	graph := deps(t, "backup", "app", "internal/progress", "steps")
	forbidden(t, graph, "internal/liveview", "cmd")
}

// The packages of the commands' application layer (app/command, app/up, …) sit below cmd and never import it;
// the composition root (app) builds clients and steps and imports none of them.
func TestApplicationLayerBelowTheCommands(t *testing.T) {
	cmds := []string{"app/command", "app/deploy", "app/capin", "app/up", "app/down", "app/backups", "app/inspect", "app/services"}
	forbidden(t, deps(t, cmds...), "cmd")
	forbidden(t, deps(t, "app"), cmds...)
}

// The policy file's model (parse, validate) is read by the step and by up: it depends on neither.
func TestPolicyFileModelBelowTheSteps(t *testing.T) {
	forbidden(t, deps(t, "internal/policyfile"), "internal/config", "steps", "app", "cmd")
}
