// Package bedziti gives tests admin access to the test bed's OpenZiti controller, and serialises the tests that
// register the test bed's SPIRE root in it (the controller accepts a certificate in one CA only).
package bedziti

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"net/url"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/calls"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/ziti"
)

// Admin returns an uncounted admin client of the test bed's controller.
func Admin(t testing.TB) *ziti.Client { return Client(t, nil) }

// Client returns an admin client of the test bed's controller, logged in, that counts its calls in counter (nil:
// uncounted).
func Client(t testing.TB, counter *calls.Counter) *ziti.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := ziti.New(ctx, Options(t, counter))
	if err != nil {
		t.Fatalf("test bed controller: %v", err)
	}
	return c
}

// Options are the options of an admin client of the test bed's controller that counts its calls in counter (nil:
// uncounted).
func Options(t testing.TB, counter *calls.Counter) ziti.Options {
	t.Helper()
	in := testbed.Require(t, "ziti")
	u, err := url.Parse(in.Ziti.URL)
	if err != nil {
		t.Fatal(err)
	}
	return ziti.Options{URL: u, User: in.Ziti.User, Password: config.NewSecret(in.Ziti.Password), CAFile: in.Ziti.CAFile, Counter: counter}
}

// ClaimSpireRoot gives the calling test the test bed's SPIRE root for its duration (and, first, the Swarm's apply
// lock: see testbed.LockSwarmApply): it takes a lock shared by every test process, and deletes the CAs ziti-bootstrap registered that root under (by an earlier apply, e.g.
// scripts/up.sh, or by this test) before the test and again when it ends, before the lock is released.
func ClaimSpireRoot(t testing.TB, admin *ziti.Client) *x509.Certificate {
	t.Helper()
	testbed.Require(t, "spire")
	testbed.LockSwarmApply(t) // such tests run apply, which takes the Swarm's apply lock
	return claimSpireRoot(t, admin)
}

// ClaimSpireRootNoApply is ClaimSpireRoot for tests that register the root themselves and never run apply: they
// do not wait for the Swarm's apply lock (which an end-to-end test may hold for many minutes).
func ClaimSpireRootNoApply(t testing.TB, admin *ziti.Client) *x509.Certificate {
	t.Helper()
	return claimSpireRoot(t, admin)
}

func claimSpireRoot(t testing.TB, admin *ziti.Client) *x509.Certificate {
	t.Helper()
	in := testbed.Require(t, "spire")
	dir := filepath.Join(testbed.StateDir(), "locks")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "spire-upstream-root.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // registered first, so it runs last
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	})
	b, err := os.ReadFile(in.Spire.UpstreamCert)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s holds no PEM certificate", in.Spire.UpstreamCert)
	}
	root, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	free := func() { FreeSpireRoot(t, admin, root) }
	free()
	t.Cleanup(free)
	return root
}

// FreeSpireRoot deletes the CAs ziti-bootstrap registered the test bed's SPIRE root under, so that the next
// apply registers it again (a write). The caller holds the root (ClaimSpireRoot).
func FreeSpireRoot(t testing.TB, admin *ziti.Client, root *x509.Certificate) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cas, err := admin.ListCAs(ctx, "")
	if err != nil {
		t.Errorf("list CAs: %v", err)
		return
	}
	for _, ca := range cas {
		if ca.Tags["ziti-bootstrap"] != "spire-ca" || !holds(ca.CertPEM, root) {
			continue
		}
		if err := admin.DeleteCA(ctx, ca.ID); err != nil && !ziti.IsNotFound(err) {
			t.Errorf("delete CA %s: %v", ca.Name, err)
		}
	}
}

func holds(certPEM string, root *x509.Certificate) bool {
	blk, _ := pem.Decode([]byte(certPEM))
	if blk == nil {
		return false
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	return err == nil && c.Equal(root)
}
