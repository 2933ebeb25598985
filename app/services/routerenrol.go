// Package services runs the tool's own services in the Swarm and their clients: the router enrolment server and
// client, the workload, the SPIRE agent launcher, and the health checks of their containers.
package services

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"

	"github.com/ziti-bootstrap/ziti-bootstrap/app/command"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/exitcode"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/routerenrol"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/spireagent"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/wait"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/ziti"
)

// RouterEnrolServerHealth checks the server in this container over its own TLS: it must answer /healthz
// presenting this container's SPIFFE ID (the healthcheck runs in the server's container, so the agent gives it
// the same SVID and bundle).
func RouterEnrolServerHealth(ctx context.Context, c *command.CLI, cfg config.RouterEnrolServerHealth) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	src, err := spireagent.Open(ctx, spireagent.Options{Socket: cfg.Socket, Deadline: 5 * time.Second})
	if err != nil {
		return ExitFor(err)
	}
	defer src.Close()
	own, err := src.GetX509SVID()
	if err != nil {
		return ExitFor(err)
	}
	tr := &http.Transport{TLSClientConfig: tlsconfig.TLSClientConfig(src, tlsconfig.AuthorizeID(own.ID))}
	defer tr.CloseIdleConnections()
	return HealthzWith(ctx, &http.Client{Transport: tr}, c.Stdout, "https", cfg.Listen, "router enrolment server")
}

// RouterEnrolServer serves edge routers their enrolment JWTs (internal/routerenrol) until ctx ends.
func RouterEnrolServer(ctx context.Context, c *command.CLI, cfg config.RouterEnrolServer) error {
	src, err := spireagent.Open(ctx, spireagent.Options{Socket: cfg.Socket, Deadline: cfg.WaitTimeout,
		OnError: func(err error) { c.Log.Warn("Workload API", "socket", cfg.Socket, "error", err) }})
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
	s := &routerenrol.Server{Identity: src, Admin: admin, Routers: cfg.Routers, Log: c.Log}
	if err := s.Check(); err != nil {
		return err
	}
	hs := &http.Server{Addr: cfg.Listen, Handler: s, TLSConfig: s.TLSConfig(), ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(c.Log.Handler(), slog.LevelWarn)}
	errc := make(chan error, 1)
	go func() { errc <- hs.ListenAndServeTLS("", "") }()
	own, _ := src.GetX509SVID()
	c.Log.Info("router enrolment server listening", "listen", cfg.Listen, "spiffeId", own.ID.String(), "routers", len(cfg.Routers),
		"controller", cfg.Ziti.URL.Redacted())
	select {
	case err := <-errc:
		return exitcode.With(exitcode.InvalidConfig, fmt.Errorf("ZB_ROUTER_ENROL_LISTEN %s: %w", cfg.Listen, err))
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
		return nil
	}
}

// RouterEnrol fetches this router's enrolment JWT from the enrolment server and writes it to out.
func RouterEnrol(ctx context.Context, c *command.CLI, cfg config.RouterEnrolClient, out string, reenrol bool) error {
	src, err := spireagent.Open(ctx, spireagent.Options{Socket: cfg.Socket, Deadline: cfg.WaitTimeout,
		OnError: func(err error) { c.Log.Warn("Workload API", "socket", cfg.Socket, "error", err) }})
	if err != nil {
		return err
	}
	defer src.Close()
	rc := &routerenrol.Client{Identity: src, URL: cfg.URL, ServerID: cfg.ServerID, Deadline: cfg.WaitTimeout,
		Progress: func(what, where string, attempt int, elapsed time.Duration, err error) {
			c.Log.Info("waiting", "for", what, "at", where, "attempt", attempt, "elapsed", elapsed.Round(time.Second).String(), "error", err)
		}}
	resp, err := rc.Enrol(ctx, reenrol)
	if routerenrol.IsRefused(err) {
		return exitcode.With(exitcode.StepFailed, err)
	}
	if err != nil {
		return err
	}
	if err := routerenrol.WriteFile(out, []byte(resp.JWT)); err != nil {
		return exitcode.With(exitcode.Internal, err)
	}
	fmt.Fprintf(c.Stdout, "edge router %s (%s): %s; enrolment JWT written to %s (expires %s)\n",
		resp.Router, resp.RouterID, resp.Action, out, resp.ExpiresAt.UTC().Format(time.RFC3339))
	return nil
}

// RouterEnrolConfig loads the settings of router-enrol: --server and --server-id beat their variables, and a
// problem with a value given as a flag names the flag; out (--out) is required.
func RouterEnrolConfig(c *command.CLI, server, serverID, out string) (config.RouterEnrolClient, error) {
	vars := c.SetFlags()
	if server != "" {
		vars["ZB_ROUTER_ENROL_URL"] = server
	}
	if serverID != "" {
		vars["ZB_ROUTER_ENROL_SERVER_ID"] = serverID
	}
	src := c.Sources()
	src.Flags = vars
	cfg, err := config.LoadRouterEnrolClient(src)
	var ce *config.Error
	if errors.As(err, &ce) { // a value given as a flag: name the flag
		flags := map[string]string{}
		if server != "" {
			flags["ZB_ROUTER_ENROL_URL"] = "--server"
		}
		if serverID != "" {
			flags["ZB_ROUTER_ENROL_SERVER_ID"] = "--server-id"
		}
		for i, p := range ce.Problems {
			if f := flags[p.Var]; f != "" {
				ce.Problems[i].Var = f + " (" + p.Var + ")"
			}
		}
	}
	if out == "" {
		p := config.Problem{Var: "--out", Msg: "required: the file to write the enrolment JWT to"}
		if ce != nil {
			ce.Problems = append([]config.Problem{p}, ce.Problems...)
		} else {
			err = &config.Error{Problems: []config.Problem{p}}
		}
	}
	return cfg, err
}
