package upgrade

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
)

var kc = Running{Server: Servers[2], Service: "zb_keycloak_keycloak", From: "zb-local/keycloak:26.4.7", To: "zb-local/keycloak:26.7.3"}

func TestMake(t *testing.T) {
	spire := Running{Server: Servers[0], Service: "zb_spire_spire-server", From: "s:1.13.3", To: "s:1.15.3", FreshData: true}
	ctrl := Running{Server: Servers[3], Service: "zb_openziti_ziti-controller", From: "z:1.7.2", To: "z:1.7.2"}
	for _, tc := range []struct {
		name    string
		in      []Running
		steps   int
		sources string
		refused string
	}{
		{"nothing changes", []Running{ctrl}, 0, "", ""},
		{"a first deployment is no upgrade", []Running{{Server: Servers[2], Service: "x", To: "k:26.7.3"}}, 0, "", ""},
		{"keycloak in place: snapshot of keycloak", []Running{spire, kc, ctrl}, 2, "keycloak", ""},
		{"spire to a fresh datastore: no snapshot", []Running{spire}, 1, "", ""},
		{"keycloak downgrade", []Running{{Server: Servers[2], Service: "x", From: "k:26.7.3", To: "k:26.4.7"}}, 0, "", "KEYCLOAK_IMAGE k:26.7.3 → k:26.4.7 is refused"},
		{"controller downgrade", []Running{{Server: Servers[3], Service: "x", From: "z:1.7.2", To: "z:1.6.9"}}, 0, "", "restore a set taken before the upgrade"},
		{"postgres major", []Running{{Server: Servers[1], Service: "x", From: "p:15.4", To: "p:16.1"}}, 0, "", "PostgreSQL 15 → 16"},
		{"tags that are not versions", []Running{{Server: Servers[2], Service: "x", From: "k:latest", To: "k:nightly"}}, 1, "keycloak", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Make(tc.in)
			if tc.refused != "" {
				var r *Refused
				if !errors.As(err, &r) || !strings.Contains(err.Error(), tc.refused) {
					t.Fatalf("err %v, want a refusal saying %q", err, tc.refused)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Steps) != tc.steps || strings.Join(p.Sources, ",") != tc.sources {
				t.Errorf("plan %+v: %d step(s), sources %v; want %d, %q", p, len(p.Steps), p.Sources, tc.steps, tc.sources)
			}
		})
	}
}

// fakeEnv records the calls of Run.
type fakeEnv struct {
	calls      []string
	deployErr  error // of the first deploy
	checkErr   error // of the first check
	deploys    int
	checks     int
	snapErr    error
	rollbackTo map[string]string
}

func (f *fakeEnv) Snapshot(_ context.Context, src []string) (string, error) {
	f.calls = append(f.calls, "snapshot "+strings.Join(src, ","))
	return "set1", f.snapErr
}
func (f *fakeEnv) Deploy(_ context.Context, vars map[string]string) error {
	f.deploys++
	if vars != nil {
		f.rollbackTo = vars
		f.calls = append(f.calls, "deploy previous")
		return nil
	}
	f.calls = append(f.calls, "deploy")
	return f.deployErr
}
func (f *fakeEnv) Check(context.Context, Plan, bool) error {
	f.checks++
	f.calls = append(f.calls, "check")
	if f.checks == 1 {
		return f.checkErr
	}
	return nil
}
func (f *fakeEnv) Stop(_ context.Context, s string) error {
	f.calls = append(f.calls, "stop "+s)
	return nil
}
func (f *fakeEnv) Restore(_ context.Context, set string, src []string) error {
	f.calls = append(f.calls, "restore "+set+" "+strings.Join(src, ","))
	return nil
}
func (f *fakeEnv) Hold(ctx context.Context, fn func(context.Context) error) error {
	f.calls = append(f.calls, "lock[")
	err := fn(ctx)
	f.calls = append(f.calls, "]")
	return err
}

func TestRun(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	p, err := Make([]Running{kc})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	ok := &fakeEnv{}
	if set, err := Run(ctx, p, ok, log); err != nil || set != "set1" {
		t.Fatalf("Run: %q, %v", set, err)
	}
	if got := strings.Join(ok.calls, "; "); got != "snapshot keycloak; deploy; lock[; check; ]" {
		t.Errorf("calls %s", got)
	}

	bad := &fakeEnv{checkErr: &CheckError{Service: kc.Service, Err: errors.New("login refused")}}
	_, err = Run(ctx, p, bad, log)
	var f *Failed
	if !errors.As(err, &f) || f.Step.Service != kc.Service || f.Rollback != nil {
		t.Fatalf("Run with a failing check: %v", err)
	}
	if got := strings.Join(bad.calls, "; "); got != "snapshot keycloak; deploy; lock[; check; stop zb_keycloak_keycloak; restore set1 keycloak; deploy previous; ]; check" {
		t.Errorf("calls %s", got)
	}
	if bad.rollbackTo["KEYCLOAK_IMAGE"] != kc.From {
		t.Errorf("rolled back to %v, want KEYCLOAK_IMAGE=%s", bad.rollbackTo, kc.From)
	}
	for _, want := range []string{"upgrade of Keycloak (zb_keycloak_keycloak)", "login refused", "pre-upgrade set set1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}

	// another run held the lock: nothing was deployed, nothing to roll back
	locked := &fakeEnv{deployErr: &NotStarted{Err: errors.New("lock held by run X")}}
	if _, err := Run(ctx, p, locked, log); err == nil || strings.Join(locked.calls, "; ") != "snapshot keycloak; deploy" {
		t.Errorf("Run when the lock is held: %v, calls %v", err, locked.calls)
	}

	// no snapshot: nothing changes
	nosnap := &fakeEnv{snapErr: errors.New("S3 down")}
	if _, err := Run(ctx, p, nosnap, log); err == nil || nosnap.deploys != 0 || !strings.Contains(err.Error(), "nothing changed") {
		t.Errorf("Run with a failing snapshot: %v, %d deploy(s)", err, nosnap.deploys)
	}
}
