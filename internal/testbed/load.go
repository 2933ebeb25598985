package testbed

import (
	"cmp"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// StateDir is where `testbed up` keeps its servers' data and StateFile.
func StateDir() string {
	return cmp.Or(os.Getenv("ZB_TESTBED_DIR"), "/tmp/zb-testbed")
}

// StateFile is the JSON Info written by `testbed up`.
func StateFile() string { return filepath.Join(StateDir(), "testbed.json") }

// Read returns the Info of the running test bed.
func Read() (*Info, error) {
	b, err := os.ReadFile(StateFile())
	if err != nil {
		return nil, fmt.Errorf("test bed not started (%w): run `task testbed:up`", err)
	}
	var in Info
	if err := json.Unmarshal(b, &in); err != nil {
		return nil, fmt.Errorf("test bed state %s: %w", StateFile(), err)
	}
	return &in, nil
}

// Load returns the test bed for an integration test. With -short it skips the test; otherwise a missing test bed
// fails it, so CI never skips silently.
func Load(t testing.TB) *Info {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: skipped with -short")
	}
	in, err := Read()
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// Require is Load, plus a check that the named server section was started; the failure names the server.
func Require(t testing.TB, server string) *Info {
	t.Helper()
	in := Load(t)
	ok := map[string]bool{
		"ziti": in.Ziti.URL != "", "spire": in.Spire.Socket != "", "keycloak": in.Keycloak.URL != "",
		"postgres": in.Postgres.Port != 0, "s3": in.S3.Endpoint != "", "docker": in.Docker.Host != "",
	}[server]
	if !ok {
		t.Fatalf("test bed has no %s server: run `task testbed:up` (state %s)", server, StateFile())
	}
	return in
}

// LockSwarmApply serialises, across test processes, the tests whose runs take ziti-bootstrap's apply lock in the
// test bed's Swarm (apply, up, down with ZB_DOCKER=true): the lock is global to the Swarm, so a test that expects
// to find it free would otherwise meet another test's run. Released when the test ends.
func LockSwarmApply(t testing.TB) {
	t.Helper()
	lockFile(t, "swarm-apply.lock")
}

// LockSideSystem serialises, across test processes, the tests that bring up a whole system (SPIRE, Keycloak,
// OpenZiti) outside the test bed's Swarm: the compose project, the three-node Swarm's up. Each such start keeps
// both cores of a CI machine busy for minutes; beside the test bed's Swarm (whose tests serialise on
// LockSwarmApply) at most two whole systems then start at once. Three at once (compose, three nodes, a Keycloak
// upgrade) left a Keycloak unready past its health check's grace in CI, and Swarm killed it. Released when the
// test ends.
func LockSideSystem(t testing.TB) {
	t.Helper()
	lockFile(t, "side-system.lock")
}
