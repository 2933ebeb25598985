package stacks

import (
	"slices"
	"testing"
)

// The converge service applies with the bootstrap job's settings (one list in the stack file, merged), plus its
// own, and is checked by its own health check.
func TestConvergeServiceHasTheBootstrapJobsSettings(t *testing.T) {
	oz := load(t, OpenZiti, fullVars())
	job := service(t, oz, "bootstrap").TaskTemplate.ContainerSpec
	conv := service(t, oz, "converge").TaskTemplate.ContainerSpec
	for _, kv := range job.Env {
		if !slices.Contains(conv.Env, kv) && kv != "ZB_WAIT_TIMEOUT=5m" {
			t.Errorf("converge lacks the bootstrap job's %s", kv)
		}
	}
	for _, want := range []string{"ZB_CONVERGE_LISTEN=:9109", "ZB_CONVERGE_INTERVAL=5m", "ZB_WAIT_TIMEOUT=2m", "ZB_DOCKER=true"} {
		if !slices.Contains(conv.Env, want) {
			t.Errorf("converge env lacks %s: %v", want, conv.Env)
		}
	}
	if got := conv.Healthcheck.Test; !slices.Equal(got, []string{"CMD", "ziti-bootstrap", "converge", "healthcheck"}) {
		t.Errorf("health check %v", got)
	}
	if len(conv.Secrets) != len(job.Secrets) {
		t.Errorf("converge has %d secrets, the job %d", len(conv.Secrets), len(job.Secrets))
	}
}
