package stacks

import (
	"slices"
	"testing"

	"github.com/docker/docker/api/types/mount"
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
	for _, want := range []string{"ZB_CONVERGE_LISTEN=127.0.0.1:9109", "ZB_CONVERGE_INTERVAL=5m", "ZB_WAIT_TIMEOUT=2m", "ZB_DOCKER=true"} {
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

// SPIRE's root key stays in the SPIRE stack: its CA signer holds it and serves the bootstrap job and the converge
// service on a socket in a volume of the SPIRE stack, so a new root (and key) changes no object of the OpenZiti
// stack. Before the signer, both services mounted the key (secret spire_upstream_ca_key) themselves.
func TestRootKeyStaysInTheSpireStack(t *testing.T) {
	vars := fullVars()
	oz := load(t, OpenZiti, vars)
	for _, s := range oz.Secrets {
		if s.Key == "spire_upstream_ca_key" {
			t.Errorf("the OpenZiti stack holds SPIRE's root key (secret %s)", s.Name)
		}
	}
	for _, name := range []string{"bootstrap", "converge"} {
		c := service(t, oz, name).TaskTemplate.ContainerSpec
		if !slices.Contains(c.Env, "SPIRE_CA_SIGNER=unix:///run/spire-ca-signer/api.sock") {
			t.Errorf("%s: no SPIRE_CA_SIGNER in %v", name, c.Env)
		}
		if !slices.ContainsFunc(c.Mounts, func(m mount.Mount) bool {
			return m.Source == "t-spire_spire-ca-signer" && m.Target == "/run/spire-ca-signer"
		}) {
			t.Errorf("%s does not mount the signer's socket volume: %v", name, c.Mounts)
		}
	}
	sp := load(t, Spire, vars)
	signer := service(t, sp, "spire-ca-signer").TaskTemplate.ContainerSpec
	if len(signer.Secrets) != 1 || signer.Secrets[0].File.Name != "spire_upstream_ca_key" {
		t.Errorf("the signer's secrets: %+v; want the root key only", signer.Secrets)
	}
	// a new root: the OpenZiti stack's objects are the same
	vars["SPIRE_UPSTREAM_CA_KEY"] = "another key"
	vars["SPIRE_UPSTREAM_CA_CERT"] = "another cert"
	if a, b := dump(oz), dump(load(t, OpenZiti, vars)); a != b {
		t.Errorf("a new SPIRE root changes the OpenZiti stack:\n%s\nthen\n%s", a, b)
	}
}

// The backup and converge services serve /metrics, /healthz and /status on the loopback (their health checks run
// in their containers), not on every address of their overlay networks, which are attachable: any container
// attached there could read them. ZB_METRICS_ADDRESS opens both, together, for scraping.
func TestMetricsListenOnTheLoopbackUnlessOpened(t *testing.T) {
	for _, tc := range []struct{ address, backup, converge string }{
		{"", "BACKUP_LISTEN=127.0.0.1:9108", "ZB_CONVERGE_LISTEN=127.0.0.1:9109"},
		{"0.0.0.0", "BACKUP_LISTEN=0.0.0.0:9108", "ZB_CONVERGE_LISTEN=0.0.0.0:9109"},
	} {
		vars := fullVars()
		if tc.address != "" {
			vars["ZB_METRICS_ADDRESS"] = tc.address
		}
		oz := load(t, OpenZiti, vars)
		for svc, want := range map[string]string{"backup": tc.backup, "converge": tc.converge} {
			if env := service(t, oz, svc).TaskTemplate.ContainerSpec.Env; !slices.Contains(env, want) {
				t.Errorf("ZB_METRICS_ADDRESS=%q: %s's environment lacks %s: %v", tc.address, svc, want, env)
			}
		}
	}
}
