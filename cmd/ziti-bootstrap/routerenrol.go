package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/spf13/cobra"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/exitcode"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/routerenrol"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/spireagent"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/wait"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/ziti"
)

func newRouterEnrolServerCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "router-enrol-server",
		Short: "Serve edge routers their one-time enrolment JWTs, to callers that prove with an X509-SVID that they are that router",
		Long: `Run an HTTPS server (ZB_ROUTER_ENROL_LISTEN, default :8443) with this process's X509-SVID from the SPIRE agent's
Workload API (SPIFFE_ENDPOINT_SOCKET). It holds the OpenZiti admin credentials (ZITI_USER, ZITI_PWD from the
variable, ZITI_PWD_FILE or the Docker secret ziti_admin_password) so that routers' nodes need none.

A caller presenting an X509-SVID of the server's trust domain whose SPIFFE ID ZB_ROUTER_IDS maps to a router
(SPIFFE_ID=ROUTER_NAME[:ATTR,ATTR...], separated by ; or blanks) gets that edge router's enrolment JWT: the router
is created (tunneler enabled, the mapped role attributes) when missing, its pending JWT returned, or, when it is
enrolled and the caller asks to re-enrol (it lost its identity), re-enrolled. Any other caller gets 403 with the
reason, logged; nothing is written for it. See internal/routerenrol for the protocol.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.LoadRouterEnrolServer(config.Sources{Flags: g.setFlags(), EnvFile: g.envFile})
			if err != nil {
				return err
			}
			return exitFor(runRouterEnrolServer(cmd.Context(), g, cfg))
		},
	}
	cmd.AddCommand(newRouterEnrolServerHealthcheckCommand(g))
	return cmd
}

// newRouterEnrolServerHealthcheckCommand checks the server in this container over its own TLS: it must answer
// /healthz presenting this container's SPIFFE ID (the healthcheck runs in the server's container, so the agent
// gives it the same SVID and bundle).
func newRouterEnrolServerHealthcheckCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "healthcheck",
		Short: "Exit 0 if the router enrolment server in this container answers over TLS with this container's SPIFFE ID",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.LoadRouterEnrolServerHealth(config.Sources{Flags: g.setFlags(), EnvFile: g.envFile})
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			src, err := spireagent.Open(ctx, spireagent.Options{Socket: cfg.Socket, Deadline: 5 * time.Second})
			if err != nil {
				return exitFor(err)
			}
			defer src.Close()
			own, err := src.GetX509SVID()
			if err != nil {
				return exitFor(err)
			}
			tr := &http.Transport{TLSClientConfig: tlsconfig.TLSClientConfig(src, tlsconfig.AuthorizeID(own.ID))}
			defer tr.CloseIdleConnections()
			return healthzWith(ctx, &http.Client{Transport: tr}, g.stdout, "https", cfg.Listen, "router enrolment server")
		},
	}
}

func runRouterEnrolServer(ctx context.Context, g *globals, cfg config.RouterEnrolServer) error {
	src, err := spireagent.Open(ctx, spireagent.Options{Socket: cfg.Socket, Deadline: cfg.WaitTimeout,
		OnError: func(err error) { g.log.Warn("Workload API", "socket", cfg.Socket, "error", err) }})
	if err != nil {
		return err
	}
	defer src.Close()
	var admin *ziti.Client
	err = wait.For(ctx, wait.Target{What: "OpenZiti controller", Where: cfg.Ziti.URL.Redacted(), Deadline: cfg.WaitTimeout},
		func(ctx context.Context) (err error) {
			admin, err = ziti.New(ctx, ziti.Options{URL: cfg.Ziti.URL, User: cfg.Ziti.User, Password: cfg.Ziti.Password,
				CAFile: cfg.Ziti.CAFile, TOFU: cfg.Ziti.CATOFU})
			return err
		})
	if err != nil {
		return err
	}
	s := &routerenrol.Server{Identity: src, Admin: admin, Routers: cfg.Routers, Log: g.log}
	if err := s.Check(); err != nil {
		return err
	}
	hs := &http.Server{Addr: cfg.Listen, Handler: s, TLSConfig: s.TLSConfig(), ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(g.log.Handler(), slog.LevelWarn)}
	errc := make(chan error, 1)
	go func() { errc <- hs.ListenAndServeTLS("", "") }()
	own, _ := src.GetX509SVID()
	g.log.Info("router enrolment server listening", "listen", cfg.Listen, "spiffeId", own.ID.String(), "routers", len(cfg.Routers),
		"controller", cfg.Ziti.URL.Redacted())
	select {
	case err := <-errc:
		return &exitError{exitcode.InvalidConfig, fmt.Errorf("ZB_ROUTER_ENROL_LISTEN %s: %w", cfg.Listen, err)}
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
		return nil
	}
}

type routerEnrolOptions struct {
	server, serverID, out string
	reenrol               bool
}

func newRouterEnrolCommand(g *globals) *cobra.Command {
	var o routerEnrolOptions
	cmd := &cobra.Command{
		Use:   "router-enrol --server URL --server-id SPIFFE_ID --out FILE [--reenrol]",
		Short: "Fetch this router's one-time enrolment JWT from the router enrolment server, proving who it is with its X509-SVID",
		Long: `Fetch this process's X509-SVID from the SPIRE agent's Workload API (SPIFFE_ENDPOINT_SOCKET), call the router
enrolment server (mutual TLS; the server must present --server-id) and write the router's enrolment JWT to --out,
atomically, mode 0600. With --reenrol an enrolled router is re-enrolled (for a router that lost its identity);
without it, an enrolled router is refused (exit code 4).

Retries with backoff while the server is not up, until ZB_WAIT_TIMEOUT (then exit code 3). Exit codes: 2 bad
flags or the server presented another SPIFFE ID, 3 the server or the agent did not answer in time, 4 refused.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			vars := g.setFlags()
			if o.server != "" {
				vars["ZB_ROUTER_ENROL_URL"] = o.server
			}
			if o.serverID != "" {
				vars["ZB_ROUTER_ENROL_SERVER_ID"] = o.serverID
			}
			cfg, err := config.LoadRouterEnrolClient(config.Sources{Flags: vars, EnvFile: g.envFile})
			var ce *config.Error
			if errors.As(err, &ce) { // a value given as a flag: name the flag
				flags := map[string]string{}
				if o.server != "" {
					flags["ZB_ROUTER_ENROL_URL"] = "--server"
				}
				if o.serverID != "" {
					flags["ZB_ROUTER_ENROL_SERVER_ID"] = "--server-id"
				}
				for i, p := range ce.Problems {
					if f := flags[p.Var]; f != "" {
						ce.Problems[i].Var = f + " (" + p.Var + ")"
					}
				}
			}
			if o.out == "" {
				p := config.Problem{Var: "--out", Msg: "required: the file to write the enrolment JWT to"}
				if ce != nil {
					ce.Problems = append([]config.Problem{p}, ce.Problems...)
				} else {
					err = &config.Error{Problems: []config.Problem{p}}
				}
			}
			if err != nil {
				return err
			}
			return exitFor(runRouterEnrol(cmd.Context(), g, cfg, o))
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.server, "server", "", "the enrolment server's URL, https://host:port (ZB_ROUTER_ENROL_URL)")
	f.StringVar(&o.serverID, "server-id", "", "the SPIFFE ID the enrolment server must present (ZB_ROUTER_ENROL_SERVER_ID)")
	f.StringVar(&o.out, "out", "", "file to write the enrolment JWT to (mode 0600, replaced atomically)")
	f.BoolVar(&o.reenrol, "reenrol", false, "re-enrol the router if it is enrolled already (it lost its identity)")
	return cmd
}

func runRouterEnrol(ctx context.Context, g *globals, cfg config.RouterEnrolClient, o routerEnrolOptions) error {
	src, err := spireagent.Open(ctx, spireagent.Options{Socket: cfg.Socket, Deadline: cfg.WaitTimeout,
		OnError: func(err error) { g.log.Warn("Workload API", "socket", cfg.Socket, "error", err) }})
	if err != nil {
		return err
	}
	defer src.Close()
	c := &routerenrol.Client{Identity: src, URL: cfg.URL, ServerID: cfg.ServerID, Deadline: cfg.WaitTimeout,
		Progress: func(what, where string, attempt int, elapsed time.Duration, err error) {
			g.log.Info("waiting", "for", what, "at", where, "attempt", attempt, "elapsed", elapsed.Round(time.Second).String(), "error", err)
		}}
	resp, err := c.Enrol(ctx, o.reenrol)
	if routerenrol.IsRefused(err) {
		return &exitError{exitcode.StepFailed, err}
	}
	if err != nil {
		return err
	}
	if err := routerenrol.WriteFile(o.out, []byte(resp.JWT)); err != nil {
		return &exitError{exitcode.Internal, err}
	}
	fmt.Fprintf(g.stdout, "edge router %s (%s): %s; enrolment JWT written to %s (expires %s)\n",
		resp.Router, resp.RouterID, resp.Action, o.out, resp.ExpiresAt.UTC().Format(time.RFC3339))
	return nil
}
