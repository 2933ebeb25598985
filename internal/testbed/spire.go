package testbed

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const spireServerConf = `server {
  bind_address = "127.0.0.1"
  bind_port = "{{port}}"
  socket_path = "{{dir}}/server.sock"
  trust_domain = "{{td}}"
  data_dir = "{{dir}}/server-data"
  log_level = "INFO"
  ca_ttl = "24h"
  default_x509_svid_ttl = "1h"
}
plugins {
  DataStore "sql" {
    plugin_data {
      database_type = "sqlite3"
      connection_string = "{{dir}}/server-data/datastore.sqlite3"
    }
  }
  KeyManager "disk" {
    plugin_data { keys_path = "{{dir}}/server-data/keys.json" }
  }
  NodeAttestor "join_token" {
    plugin_data {}
  }
  UpstreamAuthority "disk" {
    plugin_data {
      cert_file_path = "{{dir}}/upstream.crt"
      key_file_path = "{{dir}}/upstream.key"
    }
  }
}
health_checks {
  listener_enabled = {{health}}
  bind_address = "127.0.0.1"
  bind_port = "18080"
  live_path = "/live"
  ready_path = "/ready"
}
`

const spireAgentConf = `agent {
  data_dir = "{{dir}}/agent-data"
  log_level = "INFO"
  server_address = "127.0.0.1"
  server_port = "8081"
  socket_path = "{{dir}}/agent.sock"
  trust_domain = "{{td}}"
  insecure_bootstrap = true
  join_token = "{{token}}"
}
plugins {
  NodeAttestor "join_token" {
    plugin_data {}
  }
  KeyManager "memory" {
    plugin_data {}
  }
  WorkloadAttestor "unix" {
    plugin_data {}
  }
}
`

// StartSpire starts a SPIRE server with a disk UpstreamAuthority (a root generated here) and one agent attested
// with a join token, in dir/spire.
func StartSpire(ctx context.Context, dir string) (SpireInfo, error) {
	bins, sd, err := prepare(dir, "spire", "spire", "SPIRE_VERSION", "spire-server", "spire-agent")
	if err != nil {
		return SpireInfo{}, err
	}
	server, agent := bins[0], bins[1]
	for _, d := range []string{filepath.Join(sd, "server-data"), filepath.Join(sd, "agent-data")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return SpireInfo{}, err
		}
	}
	in := SpireInfo{
		Socket: filepath.Join(sd, "server.sock"), TrustDomain: "zb.test",
		UpstreamCert: filepath.Join(sd, "upstream.crt"), UpstreamKey: filepath.Join(sd, "upstream.key"),
		ServerBin: server, AgentBin: agent, ServerConf: filepath.Join(sd, "server.conf"),
		AgentSocket: filepath.Join(sd, "agent.sock"), DataDir: sd,
	}
	if err := writeRootCA(in.UpstreamCert, in.UpstreamKey, "zb-testbed SPIRE upstream root"); err != nil {
		return in, err
	}
	if _, err := startSpireServer(ctx, dir, &in, "8081", true); err != nil {
		return in, err
	}

	// The agent gets a stable alias, spiffe://TD/node/testbed, so entries can name it as parent.
	in.NodeAlias = fmt.Sprintf("spiffe://%s/ziti-bootstrap/node", in.TrustDomain) // spireentries.NodeAlias
	out, err := run(ctx, nil, server, "token", "generate", "-socketPath", in.Socket, "-ttl", "600", "-spiffeID", in.NodeAlias)
	if err != nil {
		return in, err
	}
	token := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(out), "Token:"))
	in.AgentID = fmt.Sprintf("spiffe://%s/spire/agent/join_token/%s", in.TrustDomain, token)
	agentConf := filepath.Join(sd, "agent.conf")
	if err := os.WriteFile(agentConf, []byte(strings.NewReplacer("{{dir}}", sd, "{{td}}", in.TrustDomain, "{{token}}", token).Replace(spireAgentConf)), 0o600); err != nil {
		return in, err
	}
	a, err := start("spire-agent", dir, agent, nil, "run", "-config", agentConf)
	if err != nil {
		return in, err
	}
	in.AgentPID = a.pid
	err = a.healthy(ctx, "unix://"+in.AgentSocket, 2*time.Minute, func(ctx context.Context) error {
		_, err := run(ctx, nil, agent, "healthcheck", "-socketPath", in.AgentSocket)
		return err
	})
	return in, err
}

// startSpireServer writes in.ServerConf (server port, health listener on 18080 or none) and starts the server
// in in.DataDir, waiting for it to be healthy.
func startSpireServer(ctx context.Context, dir string, in *SpireInfo, port string, health bool) (*proc, error) {
	fill := strings.NewReplacer("{{dir}}", in.DataDir, "{{td}}", in.TrustDomain, "{{port}}", port, "{{health}}", fmt.Sprint(health))
	if err := os.WriteFile(in.ServerConf, []byte(fill.Replace(spireServerConf)), 0o600); err != nil {
		return nil, err
	}
	p, err := start("spire-server", dir, in.ServerBin, nil, "run", "-config", in.ServerConf)
	if err != nil {
		return nil, err
	}
	in.PID = p.pid
	return p, p.healthy(ctx, "unix://"+in.Socket, 2*time.Minute, func(ctx context.Context) error {
		_, err := run(ctx, nil, in.ServerBin, "healthcheck", "-socketPath", in.Socket)
		return err
	})
}

// StartPrivateSpireServer starts a SPIRE server of its own for one test, in dir (short: its socket path must fit
// a unix socket address), with trust domain td, a disk UpstreamAuthority whose root is generated here (in.UpstreamCert,
// in.UpstreamKey, read again at each new X.509 CA: replace them and run `spire-server localauthority x509
// prepare` to rotate the root), its agent port free, and no agent. It is stopped when the test ends.
func StartPrivateSpireServer(t testing.TB, ctx context.Context, dir, td string) SpireInfo {
	t.Helper()
	server, err := built("spire", "SPIRE_VERSION", "spire-server")
	if err != nil {
		t.Fatal(err)
	}
	in := SpireInfo{Socket: filepath.Join(dir, "server.sock"), TrustDomain: td, ServerBin: server, DataDir: dir,
		UpstreamCert: filepath.Join(dir, "upstream.crt"), UpstreamKey: filepath.Join(dir, "upstream.key"), ServerConf: filepath.Join(dir, "server.conf")}
	if err := os.MkdirAll(filepath.Join(dir, "server-data"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := writeRootCA(in.UpstreamCert, in.UpstreamKey, "zb private SPIRE root "+filepath.Base(dir)); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(l.Addr().String())
	l.Close()
	p, err := startSpireServer(ctx, dir, &in, port, false)
	if p != nil {
		t.Cleanup(func() { stop(p.pid, 10*time.Second) })
	}
	if err != nil {
		t.Fatalf("private SPIRE server in %s: %v", dir, err)
	}
	return in
}

// X509Authority runs `spire-server localauthority x509 ARGS` (prepare, show, activate -authorityID ID, …) on the
// server of in and returns its JSON output.
func X509Authority(t testing.TB, in SpireInfo, args ...string) map[string]map[string]string {
	t.Helper()
	args = append(append([]string{"localauthority", "x509"}, args...), "-socketPath", in.Socket, "-output", "json")
	out, err := exec.Command(in.ServerBin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("spire-server %v: %v\n%s", args, err, out)
	}
	var doc map[string]map[string]string
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("spire-server %v: %v\n%s", args, err, out)
	}
	return doc
}

// WriteRootCA writes a new self-signed root certificate and its key (PEM) to certPath and keyPath.
func WriteRootCA(certPath, keyPath, cn string) error { return writeRootCA(certPath, keyPath, cn) }

// writeRootCA writes a self-signed EC P-256 CA certificate and its PKCS#8 key as PEM files.
func writeRootCA(certPath, keyPath, cn string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn, Organization: []string{"ziti-bootstrap test bed"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(5, 0, 0),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}
