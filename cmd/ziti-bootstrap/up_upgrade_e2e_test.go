package main

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/app/up"
	"github.com/ziti-bootstrap/ziti-bootstrap/backup"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/docker"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/exitcode"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/testutil"
	"github.com/ziti-bootstrap/ziti-bootstrap/stacks"
)

// upgradeOnlyImage reports whether a variable scripts/images.sh prints is an upgrade test's other version, not a
// stack variable: SPIRE_PREVIOUS_* (where the SPIRE upgrade starts), KEYCLOAK_NEXT_* (where Keycloak's goes).
func upgradeOnlyImage(k string) bool {
	return strings.HasPrefix(k, "SPIRE_PREVIOUS_") || strings.HasPrefix(k, "KEYCLOAK_NEXT_")
}

// TestUpDevKeycloakUpgradeE2E upgrades Keycloak (KEYCLOAK_VERSION 26.4.7 → KEYCLOAK_NEXT_VERSION 26.7.3) under a
// --dev system with a realm, a user and the OpenZiti signer, and the scheduled backup service (the snapshots).
//
// First an upgrade that fails after the new version has started and migrated the schema (its post-upgrade check
// forced to fail): up rolls back, and Keycloak runs its old version on its old data (MIGRATION_MODEL says the old
// version; the user made before logs in through OpenZiti), and up exits 4 naming Keycloak. Then the upgrade
// succeeds: the pre-upgrade set exists, the user still logs in, and a second up makes no mutating call.
func TestUpDevKeycloakUpgradeE2E(t *testing.T) {
	t.Parallel() // beside the other Swarm end-to-end tests: each waits for its Swarm's lock, and they mostly wait
	d := newDevSystem(t, true)
	old, next := d.images["KEYCLOAK_IMAGE"], d.images["KEYCLOAK_NEXT_IMAGE"]
	if next == "" {
		t.Fatal("scripts/images.sh printed no KEYCLOAK_NEXT_IMAGE (scripts/build-servers.sh keycloak_next)")
	}
	d.run("up --dev (Keycloak "+old+")", d.up()...)
	ctx := testutil.Context(t, 40*time.Minute)
	user := d.oidcUser(ctx)
	d.oidcLoginAs(ctx, user)
	before := d.keycloakMigration(ctx)
	t.Logf("Keycloak's schema before the upgrade: %s", before)
	kcService := d.names[stacks.Keycloak] + "_keycloak"

	// dry run: the plan, nothing written
	code, out, errs := cli(t, d.up("--dry-run", "--set", "KEYCLOAK_IMAGE="+next)...)
	if code != exitcode.OK || !strings.Contains(errs, "1. Keycloak ("+kcService+"): "+old+" → "+next) || !strings.Contains(errs, "a snapshot set of keycloak") {
		t.Errorf("up --dry-run with the next Keycloak: exit %d, no upgrade plan naming Keycloak %s → %s and the snapshot:\n%s\n%s", code, old, next, out, lastLines(errs, 20))
	}

	// a failing upgrade: the new version starts and migrates, then its check fails
	var migrated string
	fault := func(service string, rollback bool) error {
		if service != kcService || rollback {
			return nil
		}
		migrated = d.keycloakMigration(ctx)
		return errors.New("check forced to fail by the test")
	}
	up.UpgradeCheckFault.Store(&fault)
	t0 := time.Now()
	code, _, errs = cli(t, d.up("--set", "KEYCLOAK_IMAGE="+next)...)
	up.UpgradeCheckFault.Store(nil)
	t.Logf("failing upgrade: exit %d in %s\n%s", code, time.Since(t0).Round(time.Second), lastLines(errs, 12))
	if code != exitcode.StepFailed || !strings.Contains(errs, "upgrade of Keycloak ("+kcService+")") || !strings.Contains(errs, "rolled back") {
		t.Errorf("the failing upgrade: exit %d, want %d and an error naming Keycloak (%s) and the rollback", code, exitcode.StepFailed, kcService)
	}
	t.Logf("Keycloak's schema at the new version's failing check: %s; after the rollback: %s", migrated, d.keycloakMigration(ctx))
	if migrated == "" || migrated == before {
		t.Errorf("the new version's schema at its check: %q (before: %s): the test did not fail an upgrade that had migrated", migrated, before)
	}
	if after := d.keycloakMigration(ctx); after != before {
		t.Errorf("after the rollback Keycloak's schema is %s, want the old %s (the data back from the pre-upgrade set)", after, before)
	}
	if img := d.service(ctx, kcService).Spec.TaskTemplate.ContainerSpec.Image; img != old {
		t.Errorf("after the rollback Keycloak runs %s, want %s", img, old)
	}
	d.oidcLoginAs(ctx, user)

	// the upgrade that succeeds
	t1 := time.Now()
	d.run("up --dev (Keycloak "+next+")", d.up("--set", "KEYCLOAK_IMAGE="+next)...)
	if img := d.service(ctx, kcService).Spec.TaskTemplate.ContainerSpec.Image; img != next {
		t.Errorf("after the upgrade Keycloak runs %s, want %s", img, next)
	}
	if after := d.keycloakMigration(ctx); after == before {
		t.Errorf("after the upgrade Keycloak's schema is still %s", after)
	}
	d.oidcLoginAs(ctx, user)
	d.preUpgradeSet(ctx, t1)
	rep := d.run("up --dev again (Keycloak "+next+")", d.up("--set", "KEYCLOAK_IMAGE="+next)...)
	if rep.MutatingCalls != 0 {
		t.Errorf("up --dev after the upgrade made %d mutating call(s): %v", rep.MutatingCalls, rep.Writes)
	}
	d.controllerUpgradeFails(ctx, user, "KEYCLOAK_IMAGE="+next)

	// back to the old Keycloak: refused, with the way back
	code, _, errs = cli(t, d.up("--dry-run")...)
	if code != exitcode.InvalidConfig || !strings.Contains(errs, "KEYCLOAK_IMAGE") || !strings.Contains(errs, next+" → "+old+" is refused") || !strings.Contains(errs, "restore a set taken before the upgrade") {
		t.Errorf("up --dry-run with the old Keycloak: exit %d, want %d refusing the downgrade with the way back:\n%s", code, exitcode.InvalidConfig, lastLines(errs, 10))
	}
	d.run("down --volumes", append([]string{"down", "--volumes"}, d.common...)...)
}

// controllerUpgradeFails runs the failing path for the OpenZiti controller: a new image (the same ziti under
// another tag: this machine has one OpenZiti version) whose post-upgrade check fails. The controller is stopped, its
// database put back from the pre-upgrade set, the old image deployed again; up exits 4 naming the controller, and
// u still logs in through it.
func (d *devSystem) controllerUpgradeFails(ctx context.Context, u oidcUser, keep ...string) {
	t := d.tb
	t.Helper()
	old := d.images["ZITI_CONTROLLER_IMAGE"]
	tagged := old + "-zbupgrade"
	if out, err := exec.CommandContext(ctx, "docker", "tag", old, tagged).CombinedOutput(); err != nil {
		t.Fatalf("docker tag %s %s: %v: %s", old, tagged, err, out)
	}
	t.Cleanup(func() { exec.Command("docker", "image", "rm", tagged).Run() }) // the tag only
	svc := d.names[stacks.OpenZiti] + "_ziti-controller"
	fault := func(service string, rollback bool) error {
		if service != svc || rollback {
			return nil
		}
		return errors.New("check forced to fail by the test")
	}
	up.UpgradeCheckFault.Store(&fault)
	args := []string{"--set", "ZITI_CONTROLLER_IMAGE=" + tagged}
	for _, kv := range keep {
		args = append(args, "--set", kv)
	}
	t0 := time.Now()
	code, _, errs := cli(t, d.up(args...)...)
	up.UpgradeCheckFault.Store(nil)
	t.Logf("failing controller upgrade: exit %d in %s\n%s", code, time.Since(t0).Round(time.Second), lastLines(errs, 4))
	if code != exitcode.StepFailed || !strings.Contains(errs, "upgrade of OpenZiti controller ("+svc+")") || !strings.Contains(errs, "(ziti) and passed the checks") {
		t.Errorf("the failing controller upgrade: exit %d, want %d, an error naming the controller (%s) and its data restored", code, exitcode.StepFailed, svc)
	}
	if img := d.service(ctx, svc).Spec.TaskTemplate.ContainerSpec.Image; img != old {
		t.Errorf("after the rollback the controller runs %s, want %s", img, old)
	}
	d.oidcLoginAs(ctx, u)
}

// keycloakMigration is the newest version in Keycloak's MIGRATION_MODEL table, read with psql in the
// keycloak-db container.
func (d *devSystem) keycloakMigration(ctx context.Context) string {
	t := d.tb
	t.Helper()
	ns := d.names[stacks.Keycloak]
	db := d.service(ctx, ns+"_keycloak-db")
	cs, err := d.c.Containers(ctx, ns)
	testutil.Must(t, err)
	i := slices.IndexFunc(cs, func(c docker.Container) bool { return c.ServiceID == db.ID && c.State == "running" })
	if i < 0 {
		t.Fatalf("no running container of %s", db.Spec.Name)
	}
	res, err := d.c.Exec(ctx, cs[i].ID, []string{"psql", "-U", "keycloak", "-d", "keycloak", "-tAc",
		"SELECT version FROM migration_model ORDER BY update_time DESC, version DESC LIMIT 1"})
	testutil.Must(t, err)
	v := strings.TrimSpace(res.Stdout)
	if res.ExitCode != 0 || v == "" {
		t.Fatalf("psql in %s: exit %d: %s%s", db.Spec.Name, res.ExitCode, res.Stdout, res.Stderr)
	}
	return v
}

// preUpgradeSet finds the snapshot set up took for the upgrade it started after since: complete, authenticated,
// holding Keycloak's database only (the scheduled service's sets hold every source).
func (d *devSystem) preUpgradeSet(ctx context.Context, since time.Time) {
	t := d.tb
	t.Helper()
	sets, err := (&backup.Lister{Store: d.backup.store, Prefix: d.backup.prefix, Key: d.backup.key}).List(ctx, time.Now())
	testutil.Must(t, err)
	var seen []string
	for _, s := range sets {
		var objs []string
		for _, o := range s.Manifest.Objects {
			objs = append(objs, o.Source)
		}
		seen = append(seen, fmt.Sprintf("%s %s %v", s.ID, s.State, objs))
		if !s.Started.Before(since.Truncate(time.Second)) && s.State == backup.Complete && s.Authenticated && slices.Equal(objs, []string{"keycloak"}) {
			t.Logf("pre-upgrade set %s (%d bytes)", s.ID, s.Size)
			return
		}
	}
	t.Errorf("no complete, authenticated set of keycloak alone taken by the upgrade after %s: %s", since.Format(time.RFC3339), strings.Join(seen, "; "))
}
