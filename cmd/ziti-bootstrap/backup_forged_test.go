package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/exitcode"
)

// An attacker with write access to the bucket, through the CLI on the test bed: a set forged from a real one (its
// objects copied under a newer set ID, its manifest stripped of its encryption and MAC) is listed as invalid,
// refused by verify and restore naming it, passed over by latest, kept out of retention, and deleted by
// prune --invalid. Without a key, backup warns once and restore needs --allow-unauthenticated.
func TestForgedSetsOnTheCLI(t *testing.T) {
	b := newBedBackup(t)
	common := b.spireSet(t)
	run := func(want int, args ...string) string {
		t.Helper()
		return b.run(t, want, args, common...)
	}
	real := b.sets(t, common...)[0].ID

	c, err := bucket(b.in)
	mustNoErr(t, err)
	ctx := context.Background()
	at, _ := time.Parse("20060102T150405Z", real[:16])
	forged := at.Add(time.Minute).Format("20060102T150405Z") + "-f0f0"
	objs, err := c.List(ctx, b.prefix+"/"+real+"/")
	mustNoErr(t, err)
	for _, o := range objs {
		rc, _, err := c.Get(ctx, o.Key)
		mustNoErr(t, err)
		body, err := io.ReadAll(rc)
		rc.Close()
		mustNoErr(t, err)
		if strings.HasSuffix(o.Key, "/manifest.json") {
			var env struct{ Manifest map[string]any }
			mustNoErr(t, json.Unmarshal(body, &env))
			env.Manifest["set"], env.Manifest["started"] = forged, at.Add(time.Minute)
			delete(env.Manifest, "encryption")
			body, err = json.Marshal(map[string]any{"manifest": env.Manifest})
			mustNoErr(t, err)
		}
		_, err = c.Put(ctx, strings.Replace(o.Key, real, forged, 1), bytes.NewReader(body))
		mustNoErr(t, err)
	}

	states := map[string]string{}
	for _, s := range b.sets(t, common...) {
		states[s.ID] = string(s.State)
	}
	if states[real] != "complete" || states[forged] != "invalid" {
		t.Fatalf("backup list: %v; want %s complete, %s invalid", states, real, forged)
	}
	if out := run(exitcode.OK, "backup", "list"); !strings.Contains(out, forged) || !strings.Contains(out, "not authenticated") {
		t.Errorf("backup list does not mark the forged set:\n%s", out)
	}
	for _, args := range [][]string{{"backup", "verify", forged}, {"restore", forged, "--dry-run", "--services-stopped"}} {
		if out := run(exitcode.StepFailed, args...); !strings.Contains(out, "set "+forged+" is refused") || !strings.Contains(out, "not authenticated") {
			t.Errorf("%v: %s", args, out)
		}
	}
	if out := run(exitcode.OK, "restore", "latest", "--dry-run", "--services-stopped"); !strings.Contains(out, "set "+real+" verified") {
		t.Errorf("restore latest: %s", out)
	}
	if out := run(exitcode.OK, "backup", "prune", "--dry-run", "--keep-last", "1"); !strings.Contains(out, "keep "+real) || !strings.Contains(out, "keep "+forged+" (invalid)") {
		t.Errorf("prune --dry-run: %s", out)
	}
	run(exitcode.OK, "backup", "prune", "--invalid", "--keep-last", "1")
	if sets := b.sets(t, common...); len(sets) != 1 || sets[0].ID != real {
		t.Fatalf("after prune --invalid: %+v; want only %s", sets, real)
	}

	// Without a key: one plain warning; the set is not authenticated, so restore wants consent.
	keyless := slices.Clone(common)
	i := slices.Index(keyless, "--encryption-key-file")
	keyless = slices.Delete(keyless, i, i+2)
	code, out, errs := backupCLI(t, append([]string{"backup"}, keyless...)...)
	if code != exitcode.OK || strings.Count(errs, "warning: no BACKUP_ENCRYPTION_KEY") != 1 {
		t.Fatalf("backup without a key: exit %d\n%s%s", code, out, errs)
	}
	code, out, errs = backupCLI(t, append([]string{"restore", "latest", "--dry-run", "--services-stopped"}, keyless...)...)
	if code != exitcode.InvalidConfig || !strings.Contains(errs, "--allow-unauthenticated") {
		t.Errorf("restore of an unauthenticated set without consent: exit %d\n%s%s", code, out, errs)
	}
	code, out, errs = backupCLI(t, append([]string{"restore", "latest", "--dry-run", "--services-stopped", "--allow-unauthenticated"}, keyless...)...)
	if code != exitcode.OK || !strings.Contains(out, "NOT authenticated") {
		t.Errorf("restore --allow-unauthenticated: exit %d\n%s%s", code, out, errs)
	}
}
