// Package app assembles ziti-bootstrap's steps from the configuration: one client per external system, created
// by that system's "reachable" step and shared with every step that depends on it.
package app

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/calls"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/docker"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/keycloak"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/s3store"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/spire"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/wait"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/ziti"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps/keycloakrealm"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps/policies"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps/reach"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps/spireca"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps/spireentries"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps/zitioidc"
)

// Systems holds the clients of one run. A client is set by its system's reachable step; steps that depend on
// that step may use it.
type Systems struct {
	Config   *config.Config
	Counter  *calls.Counter
	Ziti     *ziti.Client
	Spire    *spire.Client
	Keycloak *keycloak.Client
	S3       *s3store.Client
	Docker   *docker.Client
}

// Close releases the clients' connections.
func (s *Systems) Close() {
	if s.Spire != nil {
		s.Spire.Close()
	}
	if s.Docker != nil {
		s.Docker.Close()
	}
}

// Reachable step names.
const (
	ZitiReachable     = "ziti/reachable"
	SpireReachable    = "spire/reachable"
	KeycloakReachable = "keycloak/reachable"
	S3Reachable       = "s3/reachable"
	DockerReachable   = "docker/reachable"
)

// Steps returns the systems of a run and its steps, in order. progress is told about every failed wait attempt.
// Declarations are validated here, before any call; every problem found is reported in one invalid-configuration
// error.
func Steps(cfg *config.Config, counter *calls.Counter, progress wait.Progress) (*Systems, []steps.Step, error) {
	sys := &Systems{Config: cfg, Counter: counter}
	var problems problems
	kc, err := keycloak.Dial(keycloak.Options{URL: cfg.Keycloak.URL, AdminUser: cfg.Keycloak.AdminUser,
		AdminPassword: cfg.Keycloak.AdminPassword, Counter: counter})
	problems.add("KEYCLOAK_URL", err)
	sys.Keycloak = kc
	realm, err := keycloakrealm.New(kc, keycloakrealm.Declaration{
		Realm:         cfg.Keycloak.Realm,
		Public:        keycloakrealm.PublicClient{ClientID: cfg.OIDC.ClientID, RedirectURIs: cfg.OIDC.RedirectURIs},
		Audience:      cfg.OIDC.Audience,
		IdentityClaim: cfg.OIDC.Claim,
	})
	problems.add("KEYCLOAK_REALM/KEYCLOAK_CLIENT_ID/KEYCLOAK_REDIRECT_URIS/ZITI_OIDC_*", err)
	sp, err := spire.Dial(context.Background(), cfg.Spire.Socket, counter)
	problems.add("SPIRE_SERVER_ADDRESS", err)
	sys.Spire = sp
	declared, loadErr := spireentries.Defaults(cfg.Spire.TrustDomain, cfg.Spire.Namespace), error(nil)
	if cfg.Spire.ComposeProject != "" {
		declared = spireentries.ComposeDefaults(cfg.Spire.TrustDomain, cfg.Spire.ComposeProject)
	}
	if cfg.Spire.EntriesFile != "" {
		var more []spireentries.Entry
		more, loadErr = spireentries.LoadFile(cfg.Spire.EntriesFile, cfg.Spire.TrustDomain)
		problems.add("SPIRE_ENTRIES_FILE", loadErr)
		declared = append(declared, more...)
	}
	var nodeCAs []*x509.Certificate
	if cfg.Spire.NodeCA != "" {
		nodeCAs, err = spireentries.ParseNodeCAs([]byte(cfg.Spire.NodeCA))
		problems.add("SPIRE_NODE_CA", err)
	}
	var entries *spireentries.Step
	if loadErr == nil {
		entries, err = spireentries.New(sp, spireentries.Config{TrustDomain: cfg.Spire.TrustDomain, Entries: declared, NodeCAs: nodeCAs})
		problems.add("SPIRE_ENTRIES_FILE/TRUST_DOMAIN", err)
	}
	caStep, err := deferStep(func() (steps.Step, error) {
		return spireca.FromConfig(sp, zitiAs[spireca.CAStore](sys), cfg.Spire)
	})
	problems.add("SPIRE_UPSTREAM_CA_KEY", err)
	oidcStep, err := deferStep(func() (steps.Step, error) {
		return zitioidc.FromConfig(realm, zitiAs[zitioidc.ZitiAPI](sys), cfg.OIDC)
	})
	problems.add("ZITI_JWT_SIGNER_NAME/ZITI_AUTH_POLICY_NAME", err)
	var policyStep steps.Step
	if cfg.Ziti.PoliciesFile != "" {
		if pol, err := policies.LoadFile(cfg.Ziti.PoliciesFile); err != nil {
			problems.add("POLICIES_FILE", err)
		} else {
			policyStep, err = policies.NewLazy(func() policies.API { return zitiAs[policies.API](sys) }, policies.Config{Policy: pol})
			problems.add("POLICIES_FILE", err)
		}
	}
	if len(problems) > 0 {
		sys.Close()
		return nil, nil, &config.Error{Problems: problems}
	}
	d := cfg.WaitTimeout
	out := []steps.Step{
		reach.New(SpireReachable, "SPIRE server", "unix://"+cfg.Spire.Socket, d, progress, sys.spireProbe),
		reach.New(KeycloakReachable, "Keycloak", cfg.Keycloak.URL.String(), d, progress, sys.keycloakProbe),
		reach.New(ZitiReachable, "OpenZiti controller", cfg.Ziti.URL.String(), d, progress, sys.zitiProbe),
		entries,
		caStep,
		realm,
		oidcStep,
	}
	if policyStep != nil {
		out = append(out, policyStep)
	}
	if cfg.S3.Endpoint != nil {
		out = append(out, reach.New(S3Reachable, "S3 store", cfg.S3.Endpoint.String(), d, progress, sys.s3Probe))
	}
	if cfg.Docker.Enabled {
		out = append(out, reach.New(DockerReachable, "Docker Engine", cfg.Docker.Host, d, progress, sys.dockerProbe))
	}
	return sys, out, nil
}

// problems collects declaration errors, each under the variables that feed it.
type problems []config.Problem

func (p *problems) add(vars string, err error) {
	if err != nil {
		*p = append(*p, config.Problem{Var: vars, Msg: err.Error()})
	}
}

// zitiAs returns the OpenZiti client as the interface T a step takes: a nil interface (not one holding a nil
// *ziti.Client) until ziti/reachable has created the client, so the step can tell it has none.
func zitiAs[T any](s *Systems) T {
	var none T
	if s.Ziti == nil {
		return none
	}
	return any(s.Ziti).(T)
}

func (s *Systems) zitiProbe(ctx context.Context) (string, error) {
	if s.Ziti == nil {
		c, err := ziti.New(ctx, ziti.Options{URL: s.Config.Ziti.URL, User: s.Config.Ziti.User, Password: s.Config.Ziti.Password,
			CAFile: s.Config.Ziti.CAFile, TOFU: s.Config.Ziti.CATOFU, Counter: s.Counter})
		if err != nil {
			return "", err
		}
		s.Ziti = c
	}
	v, err := s.Ziti.Ping(ctx)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("version %s, logged in as %s", v, s.Config.Ziti.User), nil
}

func (s *Systems) spireProbe(ctx context.Context) (string, error) {
	if err := s.Spire.Healthy(ctx); err != nil {
		return "", err
	}
	td, auths, err := s.Spire.X509Bundle(ctx)
	if err != nil {
		return "", err
	}
	if td != s.Config.Spire.TrustDomain {
		return "", wait.Permanent(&config.Error{Problems: []config.Problem{{Var: "TRUST_DOMAIN",
			Msg: fmt.Sprintf("is %q but the SPIRE server's trust domain is %q; set TRUST_DOMAIN=%s", s.Config.Spire.TrustDomain, td, td)}}})
	}
	return fmt.Sprintf("trust domain %s, %d X.509 authorit%s in the bundle", td, len(auths), map[bool]string{true: "y", false: "ies"}[len(auths) == 1]), nil
}

func (s *Systems) keycloakProbe(ctx context.Context) (string, error) {
	v, err := s.Keycloak.Ping(ctx)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("version %s, admin token for %s", v, s.Config.Keycloak.AdminUser), nil
}

func (s *Systems) s3Probe(ctx context.Context) (string, error) {
	if s.S3 == nil {
		c, err := s3store.New(s3store.Options{Endpoint: s.Config.S3.Endpoint, Region: s.Config.S3.Region, Bucket: s.Config.S3.Bucket,
			AccessKey: s.Config.S3.AccessKey, SecretKey: s.Config.S3.SecretKey, Counter: s.Counter,
			MaxRetries: 1}) // the probe waits with its own backoff
		if err != nil {
			return "", wait.Permanent(err)
		}
		s.S3 = c
	}
	return s.S3.Describe(ctx)
}

func (s *Systems) dockerProbe(ctx context.Context) (string, error) {
	if s.Docker == nil {
		c, err := docker.New(s.Config.Docker.Host, s.Counter)
		if err != nil {
			return "", wait.Permanent(&config.Error{Problems: []config.Problem{{Var: "DOCKER_HOST", Msg: err.Error()}}})
		}
		s.Docker = c
	}
	info, err := s.Docker.RequireManager(ctx)
	if errors.Is(err, docker.ErrNotManager) {
		return "", wait.Permanent(err)
	}
	if err != nil {
		return "", err
	}
	return info.String(), nil
}
