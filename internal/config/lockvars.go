package config

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// LockVars are the variables of the lock that keeps two apply runs from writing at the same time (see
// internal/lock). init appends them to Vars, so Lookup, --set and the .env.example check know them.
var LockVars = []Var{
	{Name: "ZB_LOCK_WAIT", Default: "2m", Help: "how long apply, up, down, backup and restore wait for the lock another run holds (Go duration); 0: refuse at once (exit code 5)"},
	{Name: "ZB_LOCK_TTL", Default: "60s", Help: "lifetime of the lock unless renewed (its holder renews it every third of it): a lock left by a dead run expires after this"},
	{Name: "ZB_LOCK_FILE", Default: "/tmp/ziti-bootstrap.lock", Help: "with ZB_DOCKER=false only: the file apply locks (flock), which keeps out runs on this host only"},
	{Name: "ZB_LOCK_PARENT", Help: "set by up, not by hand: the run id of up's lock, under which the backup and restore it runs in the backup service's container during an upgrade act (they wait for nothing while up holds it)"},
}

// Lock is the configuration of the apply lock.
type Lock struct {
	Wait time.Duration // 0: refuse at once when another run holds the lock
	TTL  time.Duration
	File string // the lock file when Docker is not used
	// Parent is the run whose lock this one acts under while that run holds it (ZB_LOCK_PARENT; lock.Options).
	Parent string
}

// MinLockTTL is the shortest ZB_LOCK_TTL accepted: the lock is renewed every third of it.
const MinLockTTL = 3 * time.Second

// LoadLock reads the lock variables from src with the precedence of Load (flags, environment, .env file) and
// validates them. On any problem it returns an *Error listing all of them.
func LoadLock(src Sources) (Lock, error) {
	l := newLoader(src)
	var c Lock
	if v := l.get("ZB_LOCK_WAIT"); v == "0" {
		c.Wait = 0
	} else if d, err := time.ParseDuration(v); err != nil || d < 0 {
		l.fail("ZB_LOCK_WAIT", "%q is not a duration; use e.g. 2m, or 0 to refuse at once while another run holds the lock", v)
	} else {
		c.Wait = d
	}
	ttl := l.get("ZB_LOCK_TTL")
	switch d, err := time.ParseDuration(ttl); {
	case err != nil:
		l.fail("ZB_LOCK_TTL", "%q is not a duration; use e.g. 60s", ttl)
	case d < MinLockTTL:
		l.fail("ZB_LOCK_TTL", "%s is too short: the lock is renewed every third of it; use at least %s", ttl, MinLockTTL)
	default:
		c.TTL = d
	}
	c.File = l.get("ZB_LOCK_FILE")
	if c.File == "" || !filepath.IsAbs(c.File) || strings.HasSuffix(c.File, "/") {
		l.fail("ZB_LOCK_FILE", "%q is not an absolute file path; use e.g. /tmp/ziti-bootstrap.lock", c.File)
	}
	c.Parent = l.get("ZB_LOCK_PARENT")
	if err := l.err(); err != nil {
		return Lock{}, err
	}
	return c, nil
}

// String renders the lock settings for a log line.
func (c Lock) String() string {
	wait := "refuse at once"
	if c.Wait > 0 {
		wait = "wait up to " + c.Wait.String()
	}
	return fmt.Sprintf("%s, ttl %s", wait, c.TTL)
}
