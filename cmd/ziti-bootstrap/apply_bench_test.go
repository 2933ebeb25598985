package main

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/exitcode"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/keycloak"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/bedziti"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/testutil"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/ziti"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
)

// BenchmarkApplyFresh measures `apply` on the test bed's real servers (task bench, or
// go test -run '^$' -bench ApplyFresh -benchtime 3x ./cmd/ziti-bootstrap), each iteration with a realm, JWT signer
// and auth policy of its own and the SPIRE root removed from the controller, so that the first run writes what a
// first deployment writes (SPIRE CA create + verify, realm with its client and mappers, the e-mail attribute's
// permission, signer, auth policy). The Docker Engine is left out (ZB_DOCKER=false: a lock file instead of the
// Swarm's apply lock, which end-to-end tests hold for minutes; docker/reachable took ~10 ms):
//
//   - fresh-s, noop-s: the first apply and a no-op re-run (asserted 0 writes), logged in to Keycloak with the test
//     bed's admin service account (client credentials, KEYCLOAK_ADMIN_CLIENT_ID);
//   - fresh-pw-s, noop-pw-s: the same with the admin password (the baseline, measured in the same run);
//   - kc-login-ms, kc-login-pw-ms: one admin login alone, each way;
//   - realm-ms, reach-ms: the keycloak/realm step and the keycloak/reachable step (login + server info) of the
//     fresh service-account run.
//
// Each metric is the median over the iterations.
func BenchmarkApplyFresh(b *testing.B) {
	in := testbed.Load(b)
	for _, s := range testbed.Servers {
		testbed.Require(b, s)
	}
	env, err := testbed.WriteEnv(in)
	testutil.Must(b, err)
	clientID, secret, err := testbed.KeycloakAdminClient(testutil.Context(b, 2*time.Minute), in)
	testutil.Must(b, err)
	admin := bedziti.Admin(b)
	// Not the Swarm's apply lock (end-to-end tests hold it for minutes): the test bed's servers are outside the
	// Swarm, so these runs lock a file of their own and leave out docker/reachable (ZB_DOCKER=false, below).
	root := bedziti.ClaimSpireRootNoApply(b, admin)
	lockFile := filepath.Join(b.TempDir(), "apply.lock")
	kcURL, err := url.Parse(in.Keycloak.URL)
	testutil.Must(b, err)
	kcAdmin, err := keycloak.Dial(keycloak.Options{URL: kcURL, AdminUser: in.Keycloak.AdminUser, AdminPassword: config.NewSecret(in.Keycloak.AdminPassword)})
	testutil.Must(b, err)

	metrics := map[string][]float64{}
	add := func(name string, v float64) { metrics[name] = append(metrics[name], v) }
	apply := func(name string, wantWrites bool, args ...string) steps.Report {
		start := time.Now()
		code, out, errs := cli(b, append([]string{"apply", "--env-file", env, "-o", "json", "--set", "ZB_DOCKER=false", "--set", "ZB_LOCK_FILE=" + lockFile}, args...)...)
		add(name+"-s", time.Since(start).Seconds())
		if code != exitcode.OK {
			b.Fatalf("%s: exit %d\n%s", name, code, errs)
		}
		rep := report(b, out)
		if wrote := rep.MutatingCalls > 0; wrote != wantWrites {
			b.Fatalf("%s: %d writes %v", name, rep.MutatingCalls, rep.Writes)
		}
		return rep
	}
	login := func(name string, opts keycloak.Options) {
		opts.URL = kcURL
		start := time.Now()
		if _, err := keycloak.New(context.Background(), opts); err != nil {
			b.Fatal(err)
		}
		add(name, float64(time.Since(start).Microseconds())/1000)
	}
	for i := 0; b.Loop(); i++ {
		for _, way := range []struct {
			suffix string
			args   []string
		}{{"", []string{"--set", "KEYCLOAK_ADMIN_CLIENT_ID=" + clientID}}, {"-pw", nil}} {
			id := fmt.Sprintf("zbbench-%s%d%s", testutil.RandHex(b, 3), i, way.suffix)
			b.Cleanup(func() { benchCleanup(admin, kcAdmin, id) })
			bedziti.FreeSpireRoot(b, admin, root)
			names := append(slices.Clone(way.args), "--set", "KEYCLOAK_REALM="+id, "--set", "ZITI_JWT_SIGNER_NAME="+id, "--set", "ZITI_AUTH_POLICY_NAME="+id)
			rep := apply("fresh"+way.suffix, true, names...)
			apply("noop"+way.suffix, false, names...)
			if way.suffix == "" {
				for _, s := range rep.Steps {
					switch s.Name {
					case "keycloak/realm":
						add("realm-ms", float64(s.DurationMS))
					case "keycloak/reachable":
						add("reach-ms", float64(s.DurationMS))
					}
				}
			}
		}
		login("kc-login-ms", keycloak.Options{AdminClientID: clientID, AdminClientSecret: config.NewSecret(secret)})
		login("kc-login-pw-ms", keycloak.Options{AdminUser: in.Keycloak.AdminUser, AdminPassword: config.NewSecret(in.Keycloak.AdminPassword)})
	}
	for name, vs := range metrics {
		slices.Sort(vs)
		b.ReportMetric(vs[len(vs)/2], name)
	}
}

// benchCleanup deletes what one fresh apply of BenchmarkApplyFresh made under id (its realm, signer and policy).
func benchCleanup(admin *ziti.Client, kc *keycloak.Client, id string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if ps, err := admin.ListAuthPolicies(ctx, ziti.FilterEq("name", id)); err == nil {
		for _, p := range ps {
			_ = admin.DeleteAuthPolicy(ctx, p.ID)
		}
	}
	if ss, err := admin.ListExtJWTSigners(ctx, ziti.FilterEq("name", id)); err == nil {
		for _, s := range ss {
			_ = admin.DeleteExtJWTSigner(ctx, s.ID)
		}
	}
	_ = kc.DeleteRealm(ctx, id)
}
