package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/devenv"
)

// sampleProcesses records the command line of every process on this host, as `ps` shows them to any user
// (the stacks' containers are processes of this host too), every 200 ms until the returned function is called,
// which returns the distinct lines and how many samples were taken.
func sampleProcesses(t testing.TB) func() ([]string, int) {
	t.Helper()
	seen := map[string]bool{}
	var mu sync.Mutex
	samples := 0
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			out, err := exec.Command("ps", "-e", "-ww", "-o", "args=").Output()
			mu.Lock()
			if err == nil {
				samples++
				for _, l := range strings.Split(string(out), "\n") {
					seen[strings.TrimSpace(l)] = true
				}
			}
			mu.Unlock()
			select {
			case <-done:
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	return func() ([]string, int) {
		close(done)
		<-stopped
		mu.Lock()
		defer mu.Unlock()
		lines := make([]string, 0, len(seen))
		for l := range seen {
			lines = append(lines, l)
		}
		slices.Sort(lines)
		return lines, samples
	}
}

// noSecretInProcesses checks the command lines sampled during an up --dev for the generated secrets of its
// state directory (passwords, and the lines of the SPIRE upstream key's PEM body).
func (d *devSystem) noSecretInProcesses(lines []string, samples int) {
	t := d.tb
	t.Helper()
	secrets := map[string]string{}
	for _, f := range devenv.Files {
		if strings.HasSuffix(f.Name, ".crt") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(d.state, f.Name))
		if err != nil {
			t.Fatal(err)
		}
		for i, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if l = strings.TrimSpace(l); len(l) >= 8 && !strings.HasPrefix(l, "-----") {
				secrets[fmt.Sprintf("%s (line %d)", f.Name, i+1)] = l
			}
		}
	}
	if samples < 10 || !slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, "ziti") && strings.Contains(l, "run") }) {
		t.Fatalf("the process scan saw too little (%d samples, %d lines, no ziti process): it would miss things", samples, len(lines))
	}
	found := 0
	for name, s := range secrets {
		for _, l := range lines {
			if !strings.Contains(l, s) {
				continue
			}
			found++
			t.Errorf("%s appears in a process's command line on the host during up --dev: %.60q…", name, l)
		}
	}
	t.Logf("ps during up --dev: %d samples, %d distinct command lines, %d with one of %d secrets", samples, len(lines), found, len(secrets))
}
