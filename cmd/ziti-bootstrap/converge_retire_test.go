package main

import (
	"context"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/casigner"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/testutil"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps/spireca"
)

// useSigner has the converge service verify roots through a SPIRE CA signer (as in the Swarm, where the OpenZiti
// side holds no root key): the bed's key file leaves the configuration, SPIRE_CA_SIGNER takes its place, and a
// signer holding the current root key serves on a socket of the bed. It returns the function that restarts the
// signer with other keys, as up does when a rotation updates the SPIRE stack.
func (b *convergeBed) useSigner() (restart func()) {
	b.t.Helper()
	raw, err := os.ReadFile(b.env)
	testutil.Must(b.t, err)
	sock := filepath.Join(b.dir, "signer.sock")
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		if !strings.HasPrefix(l, "SPIRE_UPSTREAM_CA_KEY_FILE=") {
			lines = append(lines, l)
		}
	}
	lines = append(lines, "SPIRE_CA_SIGNER=unix://"+sock)
	testutil.Must(b.t, os.WriteFile(b.env, []byte(strings.Join(lines, "\n")+"\n"), 0o600))
	var stop func()
	restart = func() {
		if stop != nil {
			stop()
		}
		key, err := os.ReadFile(b.spire.UpstreamKey) // the disk UpstreamAuthority's current key only
		testutil.Must(b.t, err)
		keys, err := spireca.ParseKeys(string(key))
		testutil.Must(b.t, err)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- casigner.Serve(ctx, sock, (&casigner.Server{Keys: keys}).Handler()) }()
		stop = func() {
			cancel()
			if err := <-done; err != nil {
				b.t.Errorf("signer: %v", err)
			}
		}
	}
	restart()
	b.t.Cleanup(func() { stop() })
	return restart
}

// upstreamAuthority runs `spire-server upstreamauthority ARGS` on the bed's private SPIRE server.
func (b *convergeBed) upstreamAuthority(args ...string) {
	b.t.Helper()
	out, err := exec.Command(b.spire.ServerBin, append(append([]string{"upstreamauthority"}, args...), "-socketPath", b.spire.Socket)...).CombinedOutput()
	if err != nil {
		b.t.Fatalf("spire-server upstreamauthority %v: %v\n%s", args, err, out)
	}
}

// The old root's CA goes only once nothing needs it. The converge service verifies through a SPIRE CA signer
// (no root key of its own). After a rotation both CAs stay in OpenZiti while SPIRE's bundle holds both roots: a
// workload with an SVID of the old root still logs in, one of the new root too. Once the old root leaves SPIRE's
// bundle (its upstream authority tainted, then revoked: SPIRE v1.15's way to drop a root before it expires), the
// converge service removes its CA, seconds later, with nobody running apply; the old SVID no longer logs in.
func TestConvergeServiceRetiresTheOldRoot(t *testing.T) {
	b := newConvergeBed(t)
	restartSigner := b.useSigner()
	rootA := readRoot(t, b.spire.UpstreamCert)
	b.start("ZB_CONVERGE_INTERVAL=1h")
	b.until("first converge", 3*time.Minute, func() bool { return b.metric(`ziti_bootstrap_converge_runs_total{result="converged"}`) >= 1 })
	if ca, ok := b.ca(rootA); !ok || !ca.IsVerified {
		t.Fatalf("after the first pass: CA of root A %+v, %v; want it verified (through the signer)", ca, ok)
	}
	oldSVID := b.workloadLogsIn("spiffe://conv.test/workload/old-root")

	// rotation: a new root; the signer now holds the new key only, as the SPIRE stack's signer after up
	testutil.Must(t, testbed.WriteRootCA(b.spire.UpstreamCert, b.spire.UpstreamKey, "zb private SPIRE root B"))
	restartSigner()
	rootB := readRoot(t, b.spire.UpstreamCert)
	testbed.X509Authority(t, b.spire, "prepare")
	took := b.until("the new root bound and verified", 2*time.Minute, func() bool { ca, ok := b.ca(rootB); return ok && ca.IsVerified })
	t.Logf("new SPIRE root published → bound and verified in OpenZiti through the signer: %s", took.Round(10*time.Millisecond))
	// the pass that bound the new root has ended, with both roots in SPIRE's bundle: the old root's CA stays
	b.until("the rotation's pass to end", time.Minute, func() bool { return b.metric(`ziti_bootstrap_converge_runs_total{result="converged"}`) >= 2 })
	testbed.X509Authority(t, b.spire, "activate", "-authorityID", testbed.X509Authority(t, b.spire, "show")["prepared"]["authority_id"])
	newSVID := b.workloadLogsIn("spiffe://conv.test/workload/new-root")
	changes := b.metric(`ziti_bootstrap_converge_bundle_changes_total`)
	if ca, ok := b.ca(rootA); !ok || !ca.IsVerified {
		t.Fatalf("the old root's CA went while SPIRE's bundle holds the old root: %+v, %v", ca, ok)
	}
	if err := b.logsIn(oldSVID); err != nil {
		t.Errorf("an SVID of the old root, still in SPIRE's bundle: %v", err)
	}

	// the old root leaves SPIRE's bundle
	skid := hex.EncodeToString(rootA.SubjectKeyId)
	b.upstreamAuthority("taint", "-subjectKeyID", skid)
	b.upstreamAuthority("revoke", "-subjectKeyID", skid)
	took = b.until("the old root's CA removed from OpenZiti", 2*time.Minute, func() bool { _, ok := b.ca(rootA); return !ok })
	t.Logf("old root revoked in SPIRE → its CA removed from OpenZiti: %s", took.Round(10*time.Millisecond))
	if got := b.metric(`ziti_bootstrap_converge_bundle_changes_total`); got <= changes {
		t.Errorf("bundle_changes_total %v, %v before the revocation: the watch did not see it", got, changes)
	}
	if err := b.logsIn(oldSVID); err == nil {
		t.Error("an SVID of the revoked root still logs in")
	}
	if err := b.logsIn(newSVID); err != nil {
		t.Errorf("an SVID of the new root: %v", err)
	}
	if ca, ok := b.ca(rootB); !ok || !ca.IsVerified {
		t.Errorf("the new root's CA: %+v, %v", ca, ok)
	}
}
