package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// keycloakWarmedBeforeHealthy checks what Keycloak's health check (stacks/keycloak.yml) did before it first said
// healthy: it walked the bootstrap job's path (an admin token of the service account, /admin/serverinfo, a realm,
// the discovery document, all answered 200) and made the server do a TLS handshake on 8443, as /tmp/zb-warm in
// Keycloak's container says; and the service account's secret it used appears neither in the service's spec nor
// in the container's configuration or health-check log (what `docker service inspect` and `docker inspect` show).
func (d *devSystem) keycloakWarmedBeforeHealthy() {
	t := d.tb
	t.Helper()
	svcID, id := d.keycloakContainer(context.Background())
	res, err := d.c.Exec(context.Background(), id, []string{"cat", "/tmp/zb-warm"})
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("Keycloak's health check left no /tmp/zb-warm (it did not warm the server before saying healthy): %v %+v", err, res)
	}
	for _, want := range []string{"/realms/master/protocol/openid-connect/token 200", "/admin/serverinfo 200", "/admin/realms/master 200",
		"/realms/master/.well-known/openid-configuration 200", "TLS handshake to 8443: ",
		// the realm up seeded: the job's first reads of it
		"/admin/realms/openziti 200", "/admin/realms/openziti/clients 200", "/admin/realms/openziti/users/profile 200",
		"/realms/openziti/.well-known/openid-configuration 200"} {
		if !strings.Contains(res.Stdout, want) {
			t.Errorf("Keycloak's warm-up before healthy: %q lacks %q", strings.TrimSpace(res.Stdout), want)
		}
	}
	secret, err := os.ReadFile(filepath.Join(d.state, "keycloak_admin_client_secret"))
	if err != nil || len(strings.TrimSpace(string(secret))) < 8 {
		t.Fatalf("dev state's keycloak_admin_client_secret: %v", err)
	}
	for what, argv := range map[string][]string{
		"docker service inspect":                               {"service", "inspect", svcID},
		"docker inspect (the container, its health-check log)": {"inspect", id},
	} {
		cmd := exec.Command("docker", argv...)
		cmd.Env = append(os.Environ(), "DOCKER_HOST="+d.dockerHost())
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if what != "docker service inspect" && !strings.Contains(string(out), "warmed before healthy") {
			t.Errorf("%s shows no health-check log of the warm-up: the check of the secret below would prove nothing", what)
		}
		if strings.Contains(string(out), strings.TrimSpace(string(secret))) {
			t.Errorf("%s shows the admin service account's secret", what)
		}
	}
	d.tb.Logf("Keycloak before healthy: %s", strings.TrimSpace(res.Stdout))
}

// dockerHost is the DOCKER_HOST of the system's env file.
func (d *devSystem) dockerHost() string {
	f, err := os.Open(d.envFile)
	if err != nil {
		d.tb.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "DOCKER_HOST="); ok {
			return v
		}
	}
	d.tb.Fatalf("%s sets no DOCKER_HOST", d.envFile)
	return ""
}
