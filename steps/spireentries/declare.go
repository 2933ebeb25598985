package spireentries

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"go.yaml.in/yaml/v3"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/safefile"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/spire"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/yamlguard"
)

// Entry is one declared registration entry. See the package documentation for the YAML form.
type Entry struct {
	// SpiffeID is the workload's SPIFFE ID, in the configured trust domain.
	SpiffeID string `yaml:"spiffeId" json:"spiffeId"`
	// ParentID is the agent (or node alias) that may serve the SVID; empty means NodeAlias(trust domain).
	ParentID string `yaml:"parentId,omitempty" json:"parentId,omitempty"`
	// Selectors are TYPE:VALUE, e.g. docker:label:app:ziti-router. A workload must match all of them.
	Selectors []string `yaml:"selectors" json:"selectors"`
	// X509SVIDTTL and JWTSVIDTTL are in seconds; 0 means the server's default.
	X509SVIDTTL   int32    `yaml:"x509SvidTtl,omitempty" json:"x509SvidTtl,omitempty"`
	JWTSVIDTTL    int32    `yaml:"jwtSvidTtl,omitempty" json:"jwtSvidTtl,omitempty"`
	DNSNames      []string `yaml:"dnsNames,omitempty" json:"dnsNames,omitempty"`
	FederatesWith []string `yaml:"federatesWith,omitempty" json:"federatesWith,omitempty"`
	Admin         bool     `yaml:"admin,omitempty" json:"admin,omitempty"`
	Downstream    bool     `yaml:"downstream,omitempty" json:"downstream,omitempty"`
	Hint          string   `yaml:"hint,omitempty" json:"hint,omitempty"`
	// Name distinguishes entries with the same SPIFFE ID and parent (e.g. two alternative selector sets). It is
	// part of the entry ID: renaming an entry replaces it.
	Name string `yaml:"name,omitempty" json:"name,omitempty"`
}

// File is the YAML document LoadFile reads.
type File struct {
	Entries []Entry `yaml:"entries"`
}

// DefaultIDPrefix marks the entries ziti-bootstrap owns.
const DefaultIDPrefix = "zb-"

const hashHexLen = 32 // 128 bits of SHA-256, hex

// NodeAlias is the parent ID of the default entries: the SPIFFE ID every SPIRE agent of the deployment is
// aliased to (see the package documentation).
func NodeAlias(trustDomain string) string {
	return "spiffe://" + trustDomain + "/ziti-bootstrap/node"
}

// ServerID is the SPIFFE ID of the SPIRE server, the parent of node alias entries.
func ServerID(trustDomain string) string {
	return "spiffe://" + trustDomain + "/spire/server"
}

// ServiceSelector selects the tasks of the Swarm service named name (the engine labels every task's container
// with it: it holds whatever image the service runs, and without a registry).
func ServiceSelector(name string) string {
	return "docker:label:com.docker.swarm.service.name:" + name
}

// ComposeSelectors select the container of the compose service service of the compose project project (compose
// labels every container it creates with both; the project name keeps two projects on one engine apart).
func ComposeSelectors(project, service string) []string {
	return []string{"docker:label:com.docker.compose.project:" + project, "docker:label:com.docker.compose.service:" + service}
}

// Defaults are the built-in entries, always declared: the edge router, the router enrolment service and
// ziti-bootstrap's own job of the OpenZiti stack namespace (their Swarm service names), served by any agent
// aliased to NodeAlias(trustDomain).
func Defaults(trustDomain, namespace string) []Entry {
	return defaults(trustDomain, func(svc string) []string { return []string{ServiceSelector(namespace + "_" + svc)} })
}

// ComposeDefaults are the entries of Defaults for the compose project project (ziti-bootstrap render --compose):
// the same services, selected by their compose labels instead of their Swarm service names.
func ComposeDefaults(trustDomain, project string) []Entry {
	return defaults(trustDomain, func(svc string) []string { return ComposeSelectors(project, svc) })
}

func defaults(trustDomain string, selectors func(service string) []string) []Entry {
	td := "spiffe://" + trustDomain
	return []Entry{
		{
			SpiffeID:  td + "/ziti-router",
			ParentID:  NodeAlias(trustDomain),
			Selectors: selectors("ziti-router"),
			DNSNames:  []string{"ziti-edge-router"},
			Hint:      "ziti-router",
		},
		{
			SpiffeID:  td + "/ziti-bootstrap/router-enrol",
			ParentID:  NodeAlias(trustDomain),
			Selectors: selectors("router-enrol"),
			DNSNames:  []string{"router-enrol"},
			Hint:      "router-enrol",
		},
		{
			SpiffeID:  td + "/ziti-bootstrap",
			ParentID:  NodeAlias(trustDomain),
			Selectors: selectors("bootstrap"),
			Hint:      "ziti-bootstrap",
		},
	}
}

// NodeAliasEntries are the node alias entries for the CAs of the agents' node certificates (x509pop): one entry
// per CA (an agent matches an alias when it has all of its selectors), mapping every agent attested with a
// certificate of that CA to NodeAlias(trustDomain).
func NodeAliasEntries(trustDomain string, nodeCAs []*x509.Certificate) []Entry {
	var out []Entry
	for _, ca := range nodeCAs {
		sum := sha1.Sum(ca.Raw) // x509pop's fingerprint: SHA-1 of the DER
		fp := hex.EncodeToString(sum[:])
		out = append(out, Entry{
			SpiffeID:  NodeAlias(trustDomain),
			ParentID:  ServerID(trustDomain),
			Selectors: []string{"x509pop:ca:fingerprint:" + fp},
			Name:      "node-ca-" + fp,
			Hint:      "node alias: agents attested by " + ca.Subject.String(),
		})
	}
	return out
}

// ParseNodeCAs reads the PEM CA certificates of the agents' node certificates (e.g. the Swarm's root CA).
func ParseNodeCAs(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("node CA certificate %d: %w", len(out)+1, err)
		}
		if !c.IsCA {
			return nil, fmt.Errorf("node CA certificate %d (%s) is not a CA certificate", len(out)+1, c.Subject)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM CERTIFICATE block: give the PEM root CA of the agents' node certificates (up reads the Swarm's)")
	}
	return out, nil
}

// IsNodeAlias reports whether e is a node alias entry of the trust domain (see NodeAliasEntries).
func IsNodeAlias(trustDomain string, e spire.Entry) bool {
	return e.SpiffeID == NodeAlias(trustDomain) && e.ParentID == ServerID(trustDomain)
}

// LoadFile reads and validates a declaration file. Errors name the file, the entry and the field.
func LoadFile(path, trustDomain string) ([]Entry, error) {
	data, err := safefile.Read(path, safefile.MaxValue)
	if err != nil {
		return nil, fmt.Errorf("SPIRE entries file: %w", err)
	}
	entries, err := Parse(data, trustDomain)
	if err != nil {
		return nil, fmt.Errorf("SPIRE entries file %s: %w", path, err)
	}
	return entries, nil
}

// Parse decodes a YAML declaration (unknown fields are errors, to catch typos) and validates it. The file is one
// YAML document; aliases may not expand beyond yamlguard.MaxNodes.
func Parse(data []byte, trustDomain string) ([]Entry, error) {
	var docs []*yaml.Node
	nodes := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var n yaml.Node
		err := nodes.Decode(&n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("not valid YAML: %w", err)
		}
		docs = append(docs, &n)
	}
	if len(docs) > 1 {
		return nil, fmt.Errorf("line %d: the file holds %d YAML documents (separated by ---); write every entry under the one `entries:` list", docs[1].Line, len(docs))
	}
	for _, d := range docs {
		if err := yamlguard.Check(d, yamlguard.MaxNodes); err != nil {
			return nil, err
		}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f File
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("not a valid declaration (want `entries:` followed by a list): %w", err)
	}
	if err := Validate(trustDomain, f.Entries); err != nil {
		return nil, err
	}
	return f.Entries, nil
}

// Validate checks a declaration without any call; the error joins every problem found.
func Validate(trustDomain string, entries []Entry) error {
	_, err := Desired(trustDomain, DefaultIDPrefix, entries)
	return err
}

// Desired validates entries and turns them into the SPIRE entries they declare, with owned IDs under prefix.
func Desired(trustDomain, prefix string, entries []Entry) ([]spire.Entry, error) {
	td, err := spiffeid.TrustDomainFromString(trustDomain)
	if err != nil {
		return nil, fmt.Errorf("trust domain %q: %w (set TRUST_DOMAIN to the SPIRE server's trust_domain)", trustDomain, err)
	}
	if err := checkPrefix(prefix); err != nil {
		return nil, err
	}
	var errs []error
	bad := func(i int, field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("entries[%d].%s: %s", i, field, fmt.Sprintf(format, args...)))
	}
	out := make([]spire.Entry, 0, len(entries))
	byID := map[string]int{}
	byNatural := map[string]int{}
	for i, d := range entries {
		n := len(errs)
		id := checkID(td, d.SpiffeID, func(f string, a ...any) { bad(i, "spiffeId", f, a...) }, true)
		parentStr := d.ParentID
		if parentStr == "" {
			parentStr = NodeAlias(td.Name())
		}
		parent := checkID(td, parentStr, func(f string, a ...any) { bad(i, "parentId", f, a...) }, false)
		if len(d.Selectors) == 0 {
			bad(i, "selectors", "missing; give at least one TYPE:VALUE, e.g. docker:label:app:ziti-router")
		}
		sels := make([]spire.Selector, 0, len(d.Selectors))
		seen := map[string]bool{}
		for j, s := range d.Selectors {
			field := fmt.Sprintf("selectors[%d]", j)
			sel, err := spire.ParseSelector(s)
			if err != nil {
				bad(i, field, "%v", err)
				continue
			}
			if sel.Type == "docker" && strings.HasPrefix(sel.Value, "label:") {
				if k, _, ok := strings.Cut(strings.TrimPrefix(sel.Value, "label:"), ":"); !ok || k == "" {
					bad(i, field, "%q: a Docker label selector is docker:label:KEY:VALUE", s)
					continue
				}
			}
			if seen[sel.String()] {
				bad(i, field, "%q is listed twice; remove one", s)
				continue
			}
			seen[sel.String()] = true
			sels = append(sels, sel)
		}
		spire.SortSelectors(sels)
		if d.X509SVIDTTL < 0 {
			bad(i, "x509SvidTtl", "%d is negative; give seconds, or 0 for the server's default", d.X509SVIDTTL)
		}
		if d.JWTSVIDTTL < 0 {
			bad(i, "jwtSvidTtl", "%d is negative; give seconds, or 0 for the server's default", d.JWTSVIDTTL)
		}
		for j, dns := range d.DNSNames {
			if dns == "" || strings.ContainsAny(dns, " \t/:") || slices.Contains(d.DNSNames[:j], dns) {
				bad(i, fmt.Sprintf("dnsNames[%d]", j), "%q is empty, not a DNS name, or listed twice", dns)
			}
		}
		for j, f := range d.FederatesWith {
			field := fmt.Sprintf("federatesWith[%d]", j)
			ftd, err := spiffeid.TrustDomainFromString(f)
			switch {
			case err != nil || strings.Contains(f, "://"):
				bad(i, field, "%q is not a trust domain name (write e.g. other.org)", f)
			case ftd == td:
				bad(i, field, "%q is this entry's own trust domain; remove it", f)
			}
		}
		if len(d.Hint) > 1024 {
			bad(i, "hint", "is %d characters; SPIRE allows 1024", len(d.Hint))
		}
		if len(errs) > n {
			continue
		}
		e := spire.Entry{
			ID:            EntryID(prefix, id.String(), parent.String(), d.Name),
			SpiffeID:      id.String(),
			ParentID:      parent.String(),
			Selectors:     sels,
			X509SVIDTTL:   d.X509SVIDTTL,
			JWTSVIDTTL:    d.JWTSVIDTTL,
			DNSNames:      slices.Clone(d.DNSNames),
			FederatesWith: slices.Clone(d.FederatesWith),
			Admin:         d.Admin,
			Downstream:    d.Downstream,
			Hint:          d.Hint,
		}
		if j, dup := byID[e.ID]; dup {
			bad(i, "spiffeId", "entries[%d] already declares %s with parent %s; merge them, or give one a distinct `name`", j, e.SpiffeID, e.ParentID)
			continue
		}
		nk := naturalKey(e)
		if j, dup := byNatural[nk]; dup {
			bad(i, "selectors", "entries[%d] already declares %s with parent %s and the same selectors; SPIRE allows only one such entry, remove one", j, e.SpiffeID, e.ParentID)
			continue
		}
		byID[e.ID], byNatural[nk] = i, i
		out = append(out, e)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// checkID parses s as a SPIFFE ID in td. workload: also refuse SPIRE's reserved /spire/ namespace.
func checkID(td spiffeid.TrustDomain, s string, bad func(string, ...any), workload bool) spiffeid.ID {
	if s == "" {
		bad("missing; write a SPIFFE ID such as spiffe://%s/ziti-router", td.Name())
		return spiffeid.ID{}
	}
	id, err := spiffeid.FromString(s)
	switch {
	case err != nil:
		bad("%q is not a SPIFFE ID (%v); write spiffe://%s/PATH with lower-case trust domain, no trailing slash, query or port", s, err, td.Name())
	case !id.MemberOf(td):
		bad("%q is in trust domain %q, not %q; use spiffe://%s%s or change TRUST_DOMAIN", s, id.TrustDomain().Name(), td.Name(), td.Name(), id.Path())
	case id.Path() == "":
		bad("%q has no path; write e.g. spiffe://%s/ziti-router", s, td.Name())
	case workload && (id.Path() == "/spire" || strings.HasPrefix(id.Path(), "/spire/")):
		bad("%q is in /spire/, which SPIRE reserves for its servers and agents; choose another path", s)
	default:
		return id
	}
	return spiffeid.ID{}
}

func checkPrefix(p string) error {
	if p == "" || len(p) > 255-hashHexLen {
		return fmt.Errorf("entry ID prefix %q: must be 1 to %d characters", p, 255-hashHexLen)
	}
	for _, r := range p {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_') {
			return fmt.Errorf("entry ID prefix %q: SPIRE entry IDs allow only A-Z a-z 0-9 - . _", p)
		}
	}
	return nil
}

// EntryID is the ID of the owned entry for spiffeID, parentID and name: prefix + 32 hex digits of SHA-256.
func EntryID(prefix, spiffeID, parentID, name string) string {
	h := sha256.Sum256([]byte(spiffeID + "\x00" + parentID + "\x00" + name))
	return prefix + hex.EncodeToString(h[:])[:hashHexLen]
}

// Owned reports whether id has exactly the form of an entry ID under prefix (prefix + 32 lower-case hex digits),
// so that one prefix never claims another's entries ("zb-" does not own "zb-prod-…").
func Owned(prefix, id string) bool {
	rest, ok := strings.CutPrefix(id, prefix)
	if !ok || len(rest) != hashHexLen {
		return false
	}
	for _, r := range rest {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return false
		}
	}
	return true
}

// naturalKey is what SPIRE calls a similar entry: same SPIFFE ID, parent ID and selector set.
func naturalKey(e spire.Entry) string {
	sels := slices.Clone(e.Selectors)
	spire.SortSelectors(sels)
	var b strings.Builder
	b.WriteString(e.SpiffeID + "\x00" + e.ParentID)
	for _, s := range sels {
		b.WriteString("\x00" + s.String())
	}
	return b.String()
}
