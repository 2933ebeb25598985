package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/exitcode"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/status"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/testutil"
)

// status -o json on the real servers answers an operator: systems reachable, no drift after apply (and the
// change pending once an object is deleted by hand), the converge service's last convergence, the last backup
// set (age, size, verified) and the next scheduled run, and the Swarm's nodes.
func TestStatusDocument(t *testing.T) {
	b := newConvergeBed(t)
	in := testbed.Require(t, "s3")
	testbed.Require(t, "docker")
	bedEnv, err := testbed.WriteEnv(in)
	testutil.Must(t, err)
	raw, err := os.ReadFile(bedEnv)
	testutil.Must(t, err)
	for _, l := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(l, "S3_") {
			b.addEnv(l)
		}
	}
	prefix := "zb-status-" + testutil.RandHex(t, 3)
	key := filepath.Join(b.dir, "backup.key")
	testutil.Must(t, os.WriteFile(key, []byte(newKey()+"\n"), 0o600))
	b.addEnv("BACKUP_PREFIX="+prefix, "BACKUP_ENCRYPTION_KEY_FILE="+key, "BACKUP_SCHEDULE=@every 6h")
	t.Cleanup(func() { removeObjects(t, in, prefix+"/") })

	if code, out, errs := cli(t, "apply", "--env-file", b.env); code != exitcode.OK {
		t.Fatalf("apply: exit %d\n%s\n%s", code, out, errs)
	}
	b.start("ZB_CONVERGE_INTERVAL=1h")
	b.until("the converge service's first pass", 3*time.Minute, func() bool {
		return b.metric(`ziti_bootstrap_converge_runs_total{result="converged"}`) >= 1
	})
	if code, out, errs := cli(t, "backup", "--schedule=", "--env-file", b.env, "--sources", "spire",
		"--spire-datastore", filepath.Join(b.dir, "server-data", "datastore.sqlite3"), "--tmp-dir", b.dir); code != exitcode.OK {
		t.Fatalf("backup: exit %d\n%s\n%s", code, out, errs)
	}

	get := func(extra ...string) status.Doc {
		t.Helper()
		args := append([]string{"status", "-o", "json", "--env-file", b.env, "--set", "ZB_CONVERGE_URL=http://" + b.listen, "--set", "ZB_DOCKER=true"}, extra...)
		code, out, errs := cli(t, args...)
		if code != exitcode.OK {
			t.Fatalf("status: exit %d\n%s\n%s", code, out, errs)
		}
		var d status.Doc
		if err := json.Unmarshal([]byte(out), &d); err != nil {
			t.Fatalf("status -o json: %v\n%s", err, out)
		}
		return d
	}
	now := time.Now()
	d := get()
	if d.Schema != status.Schema || !d.Converged || !d.Drift.Converged || d.Drift.Changes != 0 || len(d.Drift.Steps) < 4 {
		t.Errorf("after apply: schema %q, converged %v, drift %+v", d.Schema, d.Converged, d.Drift)
	}
	names := map[string]bool{}
	for _, s := range d.Systems {
		names[s.Name] = s.Status == "unchanged" && s.Detail != ""
	}
	for _, n := range []string{"ziti/reachable", "spire/reachable", "keycloak/reachable", "s3/reachable", "docker/reachable"} {
		if !names[n] {
			t.Errorf("system %s not reported reachable with what answered: %+v", n, d.Systems)
		}
	}
	if c := d.Convergence; c == nil || c.Error != "" || c.LastConverged.IsZero() || c.LastConverged.After(now) || now.Sub(c.LastConverged) > 5*time.Minute || c.LastResult != "converged" {
		t.Errorf("convergence %+v; want the converge service's last convergence, minutes ago at most", c)
	}
	bk := d.Backups
	if bk == nil || bk.Error != "" || bk.Sets != 1 || bk.Last == nil || !bk.Last.Verified || bk.Last.SizeBytes <= 0 || bk.Last.AgeSeconds > 600 ||
		bk.LastValid == nil || bk.LastValid.ID != bk.Last.ID {
		t.Fatalf("backups %+v (last %+v); want one verified set, seconds old", bk, bk.Last)
	}
	if next := bk.NextScheduled; next.Before(now.Add(6*time.Hour-time.Minute)) || next.After(now.Add(6*time.Hour+10*time.Minute)) {
		t.Errorf("next scheduled backup %s; want about 6 h from %s", next, now)
	}
	if sw := d.Swarm; sw == nil || len(sw.Nodes) < 1 || sw.Nodes[0].ID == "" || sw.Nodes[0].Role == "" {
		t.Errorf("swarm %+v; want the test bed's node", sw)
	}

	id, ok := b.authPolicy()
	if !ok {
		t.Fatal("no auth policy")
	}
	testutil.Must(t, b.admin.DeleteAuthPolicy(testutil.Context(t, time.Minute), id))
	d = get("--set", "ZB_CONVERGE_URL=") // without the service: no convergence section
	if d.Converged || d.Drift.Converged || d.Drift.Changes != 1 || d.Convergence != nil {
		t.Errorf("after the auth policy was deleted: converged %v, drift %+v, convergence %+v; want 1 change pending", d.Converged, d.Drift, d.Convergence)
	}
}
