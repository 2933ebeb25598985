package testbed

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// StartZiti starts `ziti edge quickstart` (controller on 1280, edge router on 3022) in dir/ziti.
func StartZiti(ctx context.Context, dir string) (ZitiInfo, error) {
	bins, home, err := prepare(dir, "ziti", "ziti", "ZITI_VERSION", "ziti")
	if err != nil {
		return ZitiInfo{}, err
	}
	bin := bins[0]
	in := ZitiInfo{URL: "https://127.0.0.1:1280", User: "admin", Password: password(), Home: home, Bin: bin}
	// quickstart 1.7.2 takes the admin password only as a flag (it ignores ZITI_PWD): a test-bed-only credential.
	p, err := start("ziti", dir, bin, nil,
		"edge", "quickstart", "--home", home, "--ctrl-address", "127.0.0.1", "--router-address", "127.0.0.1", "-p", in.Password)
	if err != nil {
		return in, err
	}
	in.PID = p.pid
	in.CAFile = filepath.Join(home, "pki", "root-ca", "certs", "root-ca.cert")
	err = p.healthy(ctx, in.URL, 3*time.Minute, func(ctx context.Context) error {
		return zitiHealthy(ctx, in)
	})
	return in, err
}

// zitiHealthy answers when the controller serves its edge client API over TLS that verifies against CAFile.
func zitiHealthy(ctx context.Context, in ZitiInfo) error {
	pem, err := os.ReadFile(in.CAFile)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return fmt.Errorf("%s holds no certificate", in.CAFile)
	}
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, in.URL+"/edge/client/v1/version", nil)
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /edge/client/v1/version: %s", resp.Status)
	}
	return nil
}
