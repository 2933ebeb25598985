package main

import (
	"encoding/hex"
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/testutil"
)

// BenchmarkConvergeRotation measures, on the test bed (a private SPIRE server, the test bed's controller), what
// the converge service takes with nobody running apply, through a SPIRE CA signer, each iteration a full root
// rotation: s-root-bound, from SPIRE publishing a new root (localauthority x509 prepare returned) to its CA
// verified in OpenZiti; s-old-root-removed, from SPIRE dropping the old root (upstreamauthority revoke returned)
// to its CA gone from OpenZiti. The bundle watch polls every 250 ms (ZB_CONVERGE_BUNDLE_POLL; 5 s in the stack),
// and s-bundle-poll reports it as the baseline: the rest is one converge pass.
//
//	go test -run '^$' -bench ConvergeRotation -benchtime 3x ./cmd/ziti-bootstrap
func BenchmarkConvergeRotation(b *testing.B) {
	bed := newConvergeBed(b)
	restartSigner := bed.useSigner()
	bed.start("ZB_CONVERGE_INTERVAL=1h")
	bed.until("first converge", 3*time.Minute, func() bool { return bed.metric(`ziti_bootstrap_converge_runs_total{result="converged"}`) >= 1 })
	var bound, removed time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		old := readRoot(b, bed.spire.UpstreamCert)
		testutil.Must(b, testbed.WriteRootCA(bed.spire.UpstreamCert, bed.spire.UpstreamKey, "zb bench root "+testutil.RandHex(b, 3)))
		restartSigner()
		root := readRoot(b, bed.spire.UpstreamCert)
		passes := bed.metric(`ziti_bootstrap_converge_runs_total{result="converged"}`)
		testbed.X509Authority(b, bed.spire, "prepare")
		bound += bed.until("the new root bound and verified", 2*time.Minute, func() bool { ca, ok := bed.ca(root); return ok && ca.IsVerified })
		bed.until("the pass to end", time.Minute, func() bool {
			return bed.metric(`ziti_bootstrap_converge_runs_total{result="converged"}`) > passes
		})
		testbed.X509Authority(b, bed.spire, "activate", "-authorityID", testbed.X509Authority(b, bed.spire, "show")["prepared"]["authority_id"])
		skid := hex.EncodeToString(old.SubjectKeyId)
		bed.upstreamAuthority("taint", "-subjectKeyID", skid)
		bed.upstreamAuthority("revoke", "-subjectKeyID", skid)
		removed += bed.until("the old root's CA removed", 2*time.Minute, func() bool { _, ok := bed.ca(old); return !ok })
	}
	b.StopTimer()
	b.ReportMetric(bound.Seconds()/float64(b.N), "s-root-bound")
	b.ReportMetric(removed.Seconds()/float64(b.N), "s-old-root-removed")
	b.ReportMetric(0.25, "s-bundle-poll")
}
