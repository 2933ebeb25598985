package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadLock(t *testing.T) {
	dotenv := filepath.Join(t.TempDir(), ".env")
	if err := os.WriteFile(dotenv, []byte("ZB_LOCK_WAIT=5m\nZB_LOCK_TTL=90s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		src   Sources
		want  Lock
		probs []string
	}{
		{"defaults", Sources{Env: env(nil)}, Lock{Wait: 2 * time.Minute, TTL: time.Minute, File: "/tmp/ziti-bootstrap.lock"}, nil},
		{"env file", Sources{Env: env(nil), EnvFile: dotenv}, Lock{Wait: 5 * time.Minute, TTL: 90 * time.Second, File: "/tmp/ziti-bootstrap.lock"}, nil},
		{"env over file, flags over env", Sources{EnvFile: dotenv, Env: env(map[string]string{"ZB_LOCK_WAIT": "1m", "ZB_LOCK_TTL": "10s"}),
			Flags: map[string]string{"ZB_LOCK_WAIT": "0", "ZB_LOCK_FILE": "/run/zb.lock"}},
			Lock{Wait: 0, TTL: 10 * time.Second, File: "/run/zb.lock"}, nil},
		{"every problem at once", Sources{Env: env(map[string]string{"ZB_LOCK_WAIT": "-1s", "ZB_LOCK_TTL": "1s", "ZB_LOCK_FILE": "rel.lock"})},
			Lock{}, []string{"ZB_LOCK_FILE", "ZB_LOCK_TTL: 1s is too short", "ZB_LOCK_WAIT"}},
		{"not durations", Sources{Env: env(map[string]string{"ZB_LOCK_WAIT": "soon", "ZB_LOCK_TTL": "long"})},
			Lock{}, []string{"ZB_LOCK_TTL: \"long\" is not a duration", "ZB_LOCK_WAIT: \"soon\" is not a duration"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := LoadLock(tc.src)
			if len(tc.probs) == 0 {
				if err != nil || got != tc.want {
					t.Fatalf("LoadLock = %+v, %v; want %+v", got, err, tc.want)
				}
				return
			}
			if !IsInvalid(err) {
				t.Fatalf("LoadLock error %v, want an invalid configuration", err)
			}
			for _, p := range tc.probs {
				if !strings.Contains(err.Error(), p) {
					t.Errorf("error lacks %q:\n%v", p, err)
				}
			}
		})
	}
}

func TestLockVarsAreKnown(t *testing.T) {
	for _, v := range LockVars {
		if got, ok := Lookup(v.Name); !ok || got != v {
			t.Errorf("Lookup(%s) = %+v, %v", v.Name, got, ok)
		}
	}
}
