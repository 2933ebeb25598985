package stack

import (
	"slices"
	"testing"
	"time"
)

// "Healthy → converged" counts from the last service healthy before the job's first task: a service that became
// healthy while the job ran (it did not wait for it) neither shortens the figure nor names itself the last.
func TestSinceHealthyCountsFromBeforeTheJobStarted(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	r := JobRun{FirstStart: t0, Completed: t0.Add(2 * time.Second)}
	r.noteHealthy("spire", t0.Add(-20*time.Second))
	r.noteHealthy("keycloak", t0.Add(-100*time.Millisecond))
	r.noteHealthy("converge", t0.Add(1700*time.Millisecond)) // healthy while the job ran
	r.noteHealthy("router", t0.Add(5*time.Second))           // after the job
	r.noteHealthy("never", time.Time{})
	if r.LastHealthy != "keycloak" || r.SinceHealthy() != 2100*time.Millisecond {
		t.Errorf("last healthy %s, healthy → converged %s; want keycloak, 2.1s", r.LastHealthy, r.SinceHealthy())
	}
	if !slices.Equal(r.Later, []string{"converge", "router"}) {
		t.Errorf("later %v, want [converge router]", r.Later)
	}
}
