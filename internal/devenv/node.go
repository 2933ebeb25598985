package devenv

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// NodeIdentity is the x509pop certificate of a SPIRE agent that runs without a Swarm (a compose project,
// `render --compose`): without a Swarm there is no node certificate to attest with, so the dev state holds one,
// and its CA takes the place of the Swarm's root CA (SPIRE_NODE_CA).
type NodeIdentity struct {
	CA, Cert, Key []byte // PEM
}

// The files of the node identity in the state directory (the CA's key is not kept: nothing else is signed).
const (
	NodeCAFile   = "compose_node_ca.crt"
	NodeCertFile = "compose_node.crt"
	NodeKeyFile  = "compose_node.key"
)

// EnsureNodeIdentity returns the node identity of the state s, generating it the first time (each file written
// whole and private, the certificate last, so an interrupted run leaves either nothing usable or all of it).
func (s *State) EnsureNodeIdentity() (*NodeIdentity, error) {
	read := func() (*NodeIdentity, error) {
		var out NodeIdentity
		for _, f := range []struct {
			name string
			into *[]byte
		}{{NodeCAFile, &out.CA}, {NodeKeyFile, &out.Key}, {NodeCertFile, &out.Cert}} {
			b, err := os.ReadFile(s.Path(f.name))
			if err != nil {
				return nil, err
			}
			*f.into = b
		}
		return &out, nil
	}
	id, err := read()
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return id, err
	}
	const validity = 10 * 365 * 24 * time.Hour
	ca, err := newCert("ziti-bootstrap dev SPIRE node CA (compose)", nil, validity)
	if err != nil {
		return nil, err
	}
	node, err := newCert("compose-node", ca, validity)
	if err != nil {
		return nil, err
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{NodeCAFile, ca.certPEM}, {NodeKeyFile, node.keyPEM}, {NodeCertFile, node.certPEM}} {
		tmp := s.Path("." + f.name + ".new")
		os.Remove(tmp)
		if err := writePrivate(tmp, f.data); err != nil {
			return nil, err
		}
		if err := os.Rename(tmp, filepath.Join(s.Dir, f.name)); err != nil {
			return nil, fmt.Errorf("dev state: %w", err)
		}
	}
	return read()
}
