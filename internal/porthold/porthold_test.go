package porthold

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/testutil"
)

// A port this test listens on is held by this very process; a closed one by nobody.
func TestListeningFindsThisProcess(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	hs, err := Listening(port)
	if err != nil {
		t.Fatal(err)
	}
	if len(hs) != 1 || hs[0].PID != os.Getpid() || hs[0].Addr != "127.0.0.1:"+itoa(port) {
		t.Fatalf("holders of %d: %+v, want this process (pid %d) on 127.0.0.1", port, hs, os.Getpid())
	}
	if d := Describe(port); !strings.Contains(d, filepath.Base(os.Args[0])) || !strings.Contains(d, "pid ") {
		t.Errorf("Describe = %q, want the command name and pid", d)
	}
	l.Close()
	if hs, err := Listening(port); err != nil || len(hs) != 0 {
		t.Errorf("after close: %+v, %v; want none", hs, err)
	}
}

func TestHexAddr(t *testing.T) {
	testutil.Cases(t, "hexAddr", hexAddr, map[string]string{
		"0100007F":                         "127.0.0.1",
		"00000000":                         "0.0.0.0",
		"00000000000000000000000000000000": "[::]",
		"00000000000000000000000001000000": "[0:0:0:0:0:0:0:1]",
	})
}

// A socket whose process cannot be seen is still reported, without a PID.
func TestListeningUnknownProcess(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "net"), 0o755)
	os.WriteFile(filepath.Join(dir, "net", "tcp"), []byte("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"+
		"   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 100 0 0 10 0\n"), 0o644)
	old := Proc
	Proc = dir
	defer func() { Proc = old }()
	hs, err := Listening(8080)
	if err != nil || len(hs) != 1 || hs[0].PID != 0 || hs[0].Addr != "0.0.0.0:8080" {
		t.Fatalf("got %+v, %v", hs, err)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
