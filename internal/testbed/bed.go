package testbed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Servers are the names Up accepts, in start order.
var Servers = []string{"postgres", "keycloak", "ziti", "spire", "s3", "docker"}

// Up starts the named servers (all when none are named) that are not already running, in parallel where they do
// not depend on each other, and writes the state file after each one. log receives one line per server.
func Up(ctx context.Context, names []string, log io.Writer) (*Info, error) {
	if len(names) == 0 {
		names = Servers
	}
	want := map[string]bool{}
	for _, n := range names {
		if !contains(Servers, n) {
			return nil, fmt.Errorf("unknown server %q (known: %s; multi-node test beds: %s)", n, strings.Join(Servers, ", "), strings.Join(SwarmNames(), ", "))
		}
		want[n] = true
	}
	if want["keycloak"] {
		want["postgres"] = true // Keycloak stores its data in the test bed's PostgreSQL
	}
	dir := StateDir()
	// 0711: the postgres OS user must traverse it to reach its own cluster directory.
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return nil, err
	}
	if err := os.Chmod(dir, 0o711); err != nil {
		return nil, err
	}
	in, err := Read()
	if err != nil {
		in = &Info{}
	}
	in.Dir = dir
	var mu sync.Mutex
	save := func(update func(*Info)) error {
		mu.Lock()
		defer mu.Unlock()
		update(in)
		return writeState(in)
	}
	running := func(pid int) bool { return pid > 0 && alive(pid) }
	// launch starts one server unless it already runs, records what it started, and logs the time it took.
	launch := func(name string, up bool, startFn func() (func(*Info), error)) error {
		t0 := time.Now()
		var err error
		if !up {
			var set func(*Info)
			set, err = startFn()
			if serr := save(set); err == nil {
				err = serr
			}
		}
		status := "ok"
		if err != nil {
			status = "FAILED"
		}
		fmt.Fprintf(log, "[testbed] %-9s %s in %.1fs\n", name, status, time.Since(t0).Seconds())
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	}
	jobs := []struct {
		want bool
		fn   func() error
	}{
		{want["postgres"], func() error {
			pgUp := running(in.Postgres.PID)
			err := launch("postgres", pgUp, func() (func(*Info), error) {
				pg, err := StartPostgres(ctx, dir)
				return func(i *Info) { i.Postgres = pg }, err
			})
			if err != nil || !want["keycloak"] {
				return err
			}
			prev := in.Keycloak // its administrator is in the database kept
			if !pgUp {
				stop(in.Keycloak.PID, 15*time.Second) // its database is new: start it afresh
				prev = KeycloakInfo{}
			}
			if err := launch("keycloak", pgUp && running(in.Keycloak.PID), func() (func(*Info), error) {
				kc, err := StartKeycloak(ctx, dir, in.Postgres, prev)
				return func(i *Info) { i.Keycloak = kc }, err
			}); err != nil {
				return err
			}
			_, _, err = KeycloakAdminClient(ctx, in) // a Keycloak started before the service account existed
			return err
		}},
		{want["ziti"], func() error {
			return launch("ziti", running(in.Ziti.PID), func() (func(*Info), error) {
				z, err := StartZiti(ctx, dir)
				return func(i *Info) { i.Ziti = z }, err
			})
		}},
		{want["spire"], func() error {
			return launch("spire", running(in.Spire.PID) && running(in.Spire.AgentPID), func() (func(*Info), error) {
				sp, err := StartSpire(ctx, dir)
				return func(i *Info) { i.Spire = sp }, err
			})
		}},
		{want["s3"], func() error {
			return launch("s3", running(in.S3.PID), func() (func(*Info), error) {
				s3, err := StartS3(ctx, dir)
				return func(i *Info) { i.S3 = s3 }, err
			})
		}},
		{want["docker"], func() error {
			return launch("docker", false, func() (func(*Info), error) {
				d, err := StartDocker(ctx, dir)
				return func(i *Info) { i.Docker = d }, err
			})
		}},
	}
	var wg sync.WaitGroup
	errs := make([]error, len(jobs))
	for i, j := range jobs {
		if !j.want {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = j.fn()
		}()
	}
	wg.Wait()
	return in, errors.Join(errs...)
}

// Down stops every server the test bed started and removes its state (data stays in StateDir unless purge).
func Down(purge bool) error {
	in, err := Read()
	if err != nil {
		return nil
	}
	for _, pid := range []int{in.Keycloak.PID, in.Ziti.PID, in.Spire.AgentPID, in.Spire.PID, in.S3.PID, in.Postgres.PID, in.Docker.PID} {
		stop(pid, 15*time.Second)
	}
	if purge {
		return os.RemoveAll(in.Dir)
	}
	return os.Remove(StateFile())
}

func writeState(in *Info) error {
	b, err := json.MarshalIndent(in, "", "  ")
	if err != nil {
		return err
	}
	tmp := StateFile() + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, StateFile())
}

// WriteEnv writes an .env file for ziti-bootstrap pointing at the test bed, with each secret in a file of its own
// (referenced by NAME_FILE) so no secret lands in the env file itself. It returns the env file's path.
func WriteEnv(in *Info) (string, error) {
	secrets := filepath.Join(in.Dir, "secrets")
	if err := os.MkdirAll(secrets, 0o700); err != nil {
		return "", err
	}
	lines := []string{"# written by `testbed up`: ziti-bootstrap configuration for the local test bed"}
	add := func(k, v string) { lines = append(lines, k+"="+v) }
	secret := func(k, v string) error {
		p := filepath.Join(secrets, strings.ToLower(k))
		add(k+"_FILE", p)
		return writeAtomic(p, []byte(v))
	}
	add("ZB_SECRETS_DIR", secrets)
	var errs []error
	if in.Ziti.URL != "" {
		add("ZITI_CTRL_URL", in.Ziti.URL)
		add("ZITI_USER", in.Ziti.User)
		add("ZITI_CA_FILE", in.Ziti.CAFile)
		errs = append(errs, secret("ZITI_PWD", in.Ziti.Password))
	}
	if in.Spire.Socket != "" {
		add("SPIRE_SERVER_ADDRESS", "unix://"+in.Spire.Socket)
		add("TRUST_DOMAIN", in.Spire.TrustDomain)
		add("SPIRE_UPSTREAM_CA_KEY_FILE", in.Spire.UpstreamKey)
	}
	if in.Keycloak.URL != "" {
		add("KEYCLOAK_URL", in.Keycloak.URL)
		add("KEYCLOAK_ADMIN_USER", in.Keycloak.AdminUser)
		errs = append(errs, secret("KEYCLOAK_ADMIN_PASSWORD", in.Keycloak.AdminPassword))
	}
	if in.S3.Endpoint != "" {
		add("S3_ENDPOINT", in.S3.Endpoint)
		add("S3_REGION", in.S3.Region)
		add("S3_ACCESS_KEY_ID", in.S3.AccessKey)
		errs = append(errs, secret("S3_SECRET_ACCESS_KEY", in.S3.SecretKey))
	}
	if in.Docker.Host != "" {
		add("ZB_DOCKER", "true")
		add("DOCKER_HOST", in.Docker.Host)
	}
	p := filepath.Join(in.Dir, "testbed.env")
	errs = append(errs, writeAtomic(p, []byte(strings.Join(lines, "\n")+"\n")))
	return p, errors.Join(errs...)
}

// writeAtomic replaces p with data (mode 0600) by a rename: tests of other packages, which run in parallel and
// call WriteEnv too, never read a half-written file.
func writeAtomic(p string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(p), "."+filepath.Base(p)+".*")
	if err != nil {
		return err
	}
	_, werr := f.Write(data)
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(f.Name())
		return err
	}
	return os.Rename(f.Name(), p)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
