// Package porthold finds which local process listens on a TCP port, from /proc (Linux): the listening sockets
// of /proc/net/tcp and tcp6, and the process whose /proc/PID/fd links to that socket's inode. It needs no tool
// (ss, lsof) and reads only.
package porthold

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Holder is a process that listens on a port.
type Holder struct {
	PID  int    // 0: the socket is known but not its process (another user's, another PID namespace)
	Name string // its command name (/proc/PID/comm)
	Addr string // the address it listens on, e.g. 0.0.0.0:8080 or [::]:8080
}

func (h Holder) String() string {
	if h.PID == 0 {
		return "a process this user cannot see (listening on " + h.Addr + ")"
	}
	return fmt.Sprintf("%s (pid %d, listening on %s)", h.Name, h.PID, h.Addr)
}

// Proc is where /proc is; tests may point it elsewhere.
var Proc = "/proc"

// Listening returns the processes that listen on TCP port on this machine (in this network namespace); none when
// the port is free. A port that cannot be read (no /proc) reports an error.
func Listening(port int) ([]Holder, error) {
	inodes := map[string]string{} // socket inode → address
	found := false
	for _, f := range []string{"tcp", "tcp6"} {
		m, err := listeners(filepath.Join(Proc, "net", f), port)
		if err != nil {
			if os.IsNotExist(err) && f == "tcp6" {
				continue
			}
			return nil, err
		}
		found = true
		for k, v := range m {
			inodes[k] = v
		}
	}
	if !found || len(inodes) == 0 {
		return nil, nil
	}
	var out []Holder
	seen := map[string]bool{}
	pids, _ := os.ReadDir(Proc)
	for _, p := range pids {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		fds, err := os.ReadDir(filepath.Join(Proc, p.Name(), "fd"))
		if err != nil {
			continue
		}
		for _, fd := range fds {
			link, err := os.Readlink(filepath.Join(Proc, p.Name(), "fd", fd.Name()))
			if err != nil || !strings.HasPrefix(link, "socket:[") {
				continue
			}
			ino := strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")
			if addr, ok := inodes[ino]; ok && !seen[ino] {
				seen[ino] = true
				out = append(out, Holder{PID: pid, Name: command(p.Name()), Addr: addr})
			}
		}
	}
	for ino, addr := range inodes {
		if !seen[ino] {
			out = append(out, Holder{Addr: addr})
		}
	}
	return out, nil
}

// command is the name of process pid: its argv[0] without the directory (comm is cut at 15 characters).
func command(pid string) string {
	if argv, err := os.ReadFile(filepath.Join(Proc, pid, "cmdline")); err == nil {
		if a0, _, _ := strings.Cut(string(argv), "\x00"); a0 != "" {
			return filepath.Base(a0)
		}
	}
	comm, _ := os.ReadFile(filepath.Join(Proc, pid, "comm"))
	return strings.TrimSpace(string(comm))
}

// listeners returns the inodes (and addresses) of the sockets of table (a /proc/net/tcp file) that listen on port.
func listeners(table string, port int) (map[string]string, error) {
	f, err := os.Open(table)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		// sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
		fs := strings.Fields(sc.Text())
		if len(fs) < 10 || fs[3] != "0A" { // 0A: LISTEN
			continue
		}
		host, hexPort, ok := strings.Cut(fs[1], ":")
		p, err := strconv.ParseUint(hexPort, 16, 16)
		if !ok || err != nil || int(p) != port {
			continue
		}
		out[fs[9]] = fmt.Sprintf("%s:%d", hexAddr(host), port)
	}
	return out, sc.Err()
}

// hexAddr renders the address of a /proc/net/tcp line (little-endian 32-bit words).
func hexAddr(h string) string {
	b := make([]byte, 0, 16)
	for i := 0; i+8 <= len(h); i += 8 {
		w, err := strconv.ParseUint(h[i:i+8], 16, 32)
		if err != nil {
			return h
		}
		b = append(b, byte(w), byte(w>>8), byte(w>>16), byte(w>>24))
	}
	switch len(b) {
	case 4:
		return fmt.Sprintf("%d.%d.%d.%d", b[0], b[1], b[2], b[3])
	case 16:
		if strings.Trim(h, "0") == "" {
			return "[::]"
		}
		var parts []string
		for i := 0; i < 16; i += 2 {
			parts = append(parts, strconv.FormatUint(uint64(b[i])<<8|uint64(b[i+1]), 16))
		}
		return "[" + strings.Join(parts, ":") + "]"
	}
	return h
}

// Describe says who holds port locally, for a message: "" when nobody (or when /proc cannot be read).
func Describe(port int) string {
	hs, err := Listening(port)
	if err != nil || len(hs) == 0 {
		return ""
	}
	var parts []string
	for _, h := range hs {
		parts = append(parts, h.String())
	}
	return strings.Join(parts, ", ")
}
