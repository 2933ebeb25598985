package testutil

import (
	"net"
	"strconv"
	"testing"
)

// FreePort returns a loopback TCP port that nothing listens on now: for a server the test starts there, or for a
// call that must find nothing listening.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	Must(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// FreeAddr is FreePort's address, 127.0.0.1:PORT.
func FreeAddr(t testing.TB) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePort(t)))
}
