package testbed

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"
)

const spireServerConf = `server {
  bind_address = "127.0.0.1"
  bind_port = "8081"
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
  listener_enabled = true
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
	server, err := built("spire", "SPIRE_VERSION", "spire-server")
	if err != nil {
		return SpireInfo{}, err
	}
	agent, err := built("spire", "SPIRE_VERSION", "spire-agent")
	if err != nil {
		return SpireInfo{}, err
	}
	sd := filepath.Join(dir, "spire")
	if err := fresh(sd); err != nil {
		return SpireInfo{}, err
	}
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
	fill := strings.NewReplacer("{{dir}}", sd, "{{td}}", in.TrustDomain)
	if err := os.WriteFile(in.ServerConf, []byte(fill.Replace(spireServerConf)), 0o600); err != nil {
		return in, err
	}
	p, err := start("spire-server", dir, server, nil, "run", "-config", in.ServerConf)
	if err != nil {
		return in, err
	}
	in.PID = p.pid
	if err := p.healthy(ctx, "unix://"+in.Socket, 2*time.Minute, func(ctx context.Context) error {
		_, err := run(ctx, nil, server, "healthcheck", "-socketPath", in.Socket)
		return err
	}); err != nil {
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
