// Package app is the composition root: it assembles ziti-bootstrap's steps from the configuration, with one
// client per external system, built here without any network call and shared by the steps. Each system's
// "reachable" step only probes: it waits until the client reaches the system (and logs in).
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
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/policyfile"
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

// Systems holds the clients of one run, built by Steps (or DockerStep) without any network call. A client whose
// settings were refused is nil, and its reachable step fails with that error: the steps that use it, which
// depend on that step, never run.
type Systems struct {
	Config   *config.Config
	Counter  *calls.Counter
	Ziti     *ziti.Client
	Spire    *spire.Client
	Keycloak *keycloak.Client
	S3       *s3store.Client
	Docker   *docker.Client

	s3Err, dockerErr error             // why S3 or Docker is nil, for their probes
	dockerSeen       *docker.SwarmInfo // the engine's Swarm state as the run read it already (DockerStep)
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
	ZitiReachable     = reach.Ziti
	SpireReachable    = reach.Spire
	KeycloakReachable = reach.Keycloak
	S3Reachable       = reach.S3
	DockerReachable   = reach.Docker
)

// RealmVars names the variables of the realm's declaration (RealmDeclaration) in its problems.
const RealmVars = "KEYCLOAK_REALM/KEYCLOAK_CLIENT_ID/KEYCLOAK_REDIRECT_URIS/ZITI_OIDC_*"

// Steps returns the systems of a run and its steps, in order. progress is told about every failed wait attempt.
// Declarations are validated here, before any call; every problem found is reported in one invalid-configuration
// error.
func Steps(cfg *config.Config, counter *calls.Counter, progress wait.Progress) (*Systems, []steps.Step, error) {
	sys := &Systems{Config: cfg, Counter: counter}
	var problems problems
	kc, err := keycloak.Dial(keycloak.Options{URL: cfg.Keycloak.URL, AdminUser: cfg.Keycloak.AdminUser,
		AdminPassword: cfg.Keycloak.AdminPassword, AdminClientID: cfg.Keycloak.AdminClientID,
		AdminClientSecret: cfg.Keycloak.AdminClientSecret, CAFile: cfg.Keycloak.CAFile, Counter: counter})
	problems.add("KEYCLOAK_URL", err)
	sys.Keycloak = kc
	realm, err := keycloakrealm.New(kc, RealmDeclaration(cfg))
	problems.add(RealmVars, err)
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
	zc, zitiErr := ziti.Dial(ziti.Options{URL: cfg.Ziti.URL, User: cfg.Ziti.User, Password: cfg.Ziti.Password,
		CAFile: cfg.Ziti.CAFile, TOFU: cfg.Ziti.CATOFU, Counter: counter})
	sys.Ziti = zc
	caStep, err := spireca.FromConfig(sp, zc, cfg.Spire)
	problems.add("SPIRE_UPSTREAM_CA_KEY", err)
	oidcStep, err := zitioidc.FromConfig(realm, zc, cfg.OIDC)
	problems.add("ZITI_JWT_SIGNER_NAME/ZITI_AUTH_POLICY_NAME", err)
	var policyStep steps.Step
	if cfg.Ziti.PoliciesFile != "" {
		if pol, err := policyfile.LoadFile(cfg.Ziti.PoliciesFile); err != nil {
			problems.add("POLICIES_FILE", err)
		} else {
			policyStep, err = policies.New(zc, policies.Config{Policy: pol})
			problems.add("POLICIES_FILE", err)
		}
	}
	routerDefaults, err := policies.RouterDefaults(zc, cfg.Ziti.DefaultRouterPolicies)
	problems.add("ZITI_DEFAULT_ROUTER_POLICIES", err)
	if cfg.S3.Endpoint != nil {
		sys.S3, sys.s3Err = s3store.New(s3store.Options{Endpoint: cfg.S3.Endpoint, Region: cfg.S3.Region, Bucket: cfg.S3.Bucket,
			AccessKey: cfg.S3.AccessKey, SecretKey: cfg.S3.SecretKey, Counter: counter,
			MaxRetries: 1}) // the probe waits with its own backoff
	}
	if cfg.Docker.Enabled {
		sys.dialDocker()
	}
	if len(problems) > 0 {
		sys.Close()
		return nil, nil, &config.Error{Problems: problems}
	}
	d := cfg.WaitTimeout
	out := []steps.Step{
		reach.New(SpireReachable, "SPIRE server", "unix://"+cfg.Spire.Socket, d, progress, sys.spireProbe),
		reach.New(KeycloakReachable, "Keycloak", cfg.Keycloak.URL.String(), d, progress, sys.keycloakProbe),
		reach.New(ZitiReachable, "OpenZiti controller", cfg.Ziti.URL.String(), d, progress, func(ctx context.Context) (string, error) {
			if zitiErr != nil {
				return "", zitiErr // a refused setting: Permanent, the wait stops at once
			}
			return sys.zitiProbe(ctx)
		}),
		entries,
		caStep,
		realm,
		oidcStep,
	}
	if policyStep != nil {
		out = append(out, policyStep)
	}
	out = append(out, routerDefaults)
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

func (s *Systems) zitiProbe(ctx context.Context) (string, error) {
	if err := s.Ziti.Login(ctx); err != nil {
		return "", err
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
	return fmt.Sprintf("version %s, admin token by %s", v, s.Keycloak.LoginMethod()), nil
}

func (s *Systems) s3Probe(ctx context.Context) (string, error) {
	if s.s3Err != nil {
		return "", wait.Permanent(s.s3Err)
	}
	return s.S3.Describe(ctx)
}

// dialDocker builds the Docker client (no call is made); a refused DOCKER_HOST is kept for the probe.
func (s *Systems) dialDocker() {
	c, err := docker.New(s.Config.Docker.Host, s.Counter)
	if err != nil {
		s.dockerErr = wait.Permanent(&config.Error{Problems: []config.Problem{{Var: "DOCKER_HOST", Msg: err.Error()}}})
		return
	}
	s.Docker = c
}

func (s *Systems) dockerProbe(ctx context.Context) (string, error) {
	if s.dockerErr != nil {
		return "", s.dockerErr
	}
	if s.dockerSeen != nil {
		if err := s.dockerSeen.RequireManager(s.Config.Docker.Host); err != nil {
			return "", wait.Permanent(err)
		}
		return s.dockerSeen.String(), nil
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
