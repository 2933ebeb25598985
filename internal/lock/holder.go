package lock

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Holder describes the run that holds (or wants) the lock.
type Holder struct {
	Run      string        `json:"run"`      // random id of the run
	Host     string        `json:"host"`     // host name (a task's container id in a Swarm)
	PID      int           `json:"pid"`      // process id, meaningful on Host in PIDNS
	Acquired time.Time     `json:"acquired"` // when the run took the lock
	Expires  time.Time     `json:"expires"`  // when the lock expires unless renewed (zero: it does not)
	TTL      time.Duration `json:"ttl"`

	// Where PID means something: the kernel's boot id and the PID namespace, and the process's start time
	// (clock ticks since boot), which tells a live holder from a new process that got the same PID.
	Kernel   string `json:"kernel,omitempty"`
	PIDNS    string `json:"pidns,omitempty"`
	PIDStart string `json:"pidStart,omitempty"`
}

// Self describes this process, with a new run id.
func Self() Holder {
	host, _ := os.Hostname()
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return Holder{
		Run: hex.EncodeToString(b), Host: host, PID: os.Getpid(),
		Kernel: readTrim("/proc/sys/kernel/random/boot_id"), PIDNS: pidNamespace("self"), PIDStart: processStart("self"),
	}
}

func (h Holder) String() string {
	host := h.Host
	if host == "" {
		host = "an unknown host"
	}
	s := fmt.Sprintf("run %s (pid %d on %s", orUnknown(h.Run), h.PID, host)
	if !h.Acquired.IsZero() {
		s += ", since " + h.Acquired.UTC().Format(time.RFC3339)
	}
	if !h.Expires.IsZero() {
		s += ", expires " + h.Expires.UTC().Format(time.RFC3339)
	}
	return s + ")"
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// Expired reports whether the lock of h has expired at now.
func (h Holder) Expired(now time.Time) bool { return !h.Expires.IsZero() && now.After(h.Expires) }

// Dead reports whether h is a process of this kernel and PID namespace that no longer runs: its PID is free,
// or taken by a process that started at another time. A holder elsewhere is never known to be dead.
func (h Holder) Dead() bool {
	me := Self()
	if h.Kernel == "" || h.PIDNS == "" || h.PIDStart == "" || h.PID <= 0 || h.Kernel != me.Kernel || h.PIDNS != me.PIDNS {
		return false
	}
	pid := strconv.Itoa(h.PID)
	if _, err := os.Stat("/proc/" + pid); os.IsNotExist(err) {
		return true
	}
	start := processStart(pid)
	return start != "" && start != h.PIDStart
}

func readTrim(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// pidNamespace is the identity of the PID namespace of process pid ("self" or a number), e.g. "pid:[4026531836]".
func pidNamespace(pid string) string {
	s, err := os.Readlink("/proc/" + pid + "/ns/pid")
	if err != nil {
		return ""
	}
	return s
}

// processStart is field 22 of /proc/PID/stat: when the process started, in clock ticks since boot.
func processStart(pid string) string {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return ""
	}
	// The command name (field 2) is in parentheses and may hold spaces: count fields after its closing ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return ""
	}
	f := strings.Fields(s[i+1:]) // starts with field 3
	if len(f) < 20 {
		return ""
	}
	return f[19]
}
