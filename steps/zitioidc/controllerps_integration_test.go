package zitioidc_test

import (
	"bytes"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed"
)

// TestControllerFirstStartKeepsThePasswordOffTheProcessList: the controller, run as the OpenZiti stack runs it,
// creates its default admin on its first start without the password in any process's arguments (the image's
// bootstrap runs `ziti controller edge init … --password …`; the stack's entrypoint types it on edge init's
// terminal instead). Every process's command line on the host is read while the controller starts (the test
// requires having seen edge init run, so the scan is not vacuous); afterwards the admin logs in with the password.
func TestControllerFirstStartKeepsThePasswordOffTheProcessList(t *testing.T) {
	t.Parallel()
	in := testbed.Require(t, "docker")
	var samples, initSeen int
	var leaks []string
	stackController(t, in.Docker.Host, newTLSCA(t, "zbtest Keycloak CA").certPEM, func(pwd string) func() {
		done, stopped := make(chan struct{}), sync.WaitGroup{}
		stopped.Add(1)
		go func() {
			defer stopped.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				samples++
				paths, _ := filepath.Glob("/proc/[0-9]*/cmdline")
				for _, p := range paths {
					b, err := os.ReadFile(p)
					if err != nil {
						continue
					}
					if bytes.Contains(b, []byte("controller\x00edge\x00init")) {
						initSeen++
					}
					if bytes.Contains(b, []byte(pwd)) {
						leaks = append(leaks, string(bytes.ReplaceAll(bytes.ReplaceAll(b, []byte(pwd), []byte("<password>")), []byte{0}, []byte{' '})))
					}
				}
				time.Sleep(5 * time.Millisecond)
			}
		}()
		return func() { close(done); stopped.Wait() }
	})
	t.Logf("%d scans of the process list while the controller started; edge init seen in %d", samples, initSeen)
	if initSeen == 0 {
		t.Error("no scan saw edge init run: the scan proves nothing")
	}
	if len(leaks) > 0 {
		t.Errorf("the admin password was in %d process command line(s), e.g. %q", len(leaks), leaks[0])
	}
}
