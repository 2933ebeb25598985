package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/exitcode"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/spireagent"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/wait"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/workload"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/ziti"
)

func newWorkloadCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "workload",
		Short: "Run a small workload that logs in to OpenZiti with its SPIFFE X509-SVID, again at every rotation",
		Long: `Run until stopped: fetch this process's X509-SVID from the SPIRE agent's Workload API (SPIFFE_ENDPOINT_SOCKET),
enrol in OpenZiti through the verified SPIRE CA if no identity has its SPIFFE ID yet, log in with the SVID
(method=cert, a fresh TLS connection), read the identity, log out; again for every new SVID the agent rotates in.

Each enrolment, login and failure is one JSON line on stdout (see internal/workload): event, spiffeId, serial,
identityId, identityName, externalId, roleAttributes, time. Failed attempts are retried with backoff until
ZB_WAIT_TIMEOUT; after it the command exits with code 3.

Variables: SPIFFE_ENDPOINT_SOCKET, ZITI_CTRL_URL, ZITI_CA_FILE (or ZITI_CA_TOFU=true), ZB_WORKLOAD_SPIFFE_ID,
ZB_WORKLOAD_NAME, ZB_WORKLOAD_LISTEN (its /healthz, for "workload healthcheck"), ZB_WAIT_TIMEOUT.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.LoadWorkload(config.Sources{Flags: g.setFlags(), EnvFile: g.envFile})
			if err != nil {
				return err
			}
			return exitFor(runWorkload(cmd.Context(), g, cfg))
		},
	}
	cmd.AddCommand(newWorkloadHealthcheckCommand(g))
	return cmd
}

func runWorkload(ctx context.Context, g *globals, cfg config.Workload) error {
	w := &workload.Workload{Out: g.stdout, Name: cfg.Name, Deadline: cfg.WaitTimeout, Where: cfg.Ziti.URL.Redacted()}
	src, err := spireagent.Open(ctx, spireagent.Options{Socket: cfg.Socket, Want: cfg.SpiffeID, Deadline: cfg.WaitTimeout,
		OnError: func(err error) {
			w.Emit(workload.Event{Event: workload.EventFailed, Stage: workload.StageWorkloadAPI, Error: err.Error()})
		}})
	if err != nil {
		return err
	}
	defer src.Close()
	w.Source = src

	var api ziti.ClientAPI
	err = wait.For(ctx, wait.Target{What: "OpenZiti controller (CA bundle)", Where: cfg.Ziti.URL.Redacted(), Deadline: cfg.WaitTimeout},
		func(ctx context.Context) (err error) {
			api, err = ziti.NewClientAPI(ctx, ziti.Options{URL: cfg.Ziti.URL, CAFile: cfg.Ziti.CAFile, TOFU: cfg.Ziti.CATOFU})
			return err
		})
	if err != nil {
		return err
	}
	w.Ziti = api

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return &config.Error{Problems: []config.Problem{{Var: "ZB_WORKLOAD_LISTEN", Msg: fmt.Sprintf("cannot listen on %s: %v", cfg.Listen, err)}}}
	}
	hs := &http.Server{Handler: w, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	defer hs.Close()
	g.log.Info("workload started", "spiffeId", mustSVID(src), "controller", cfg.Ziti.URL.Redacted(), "healthz", ln.Addr().String())
	return w.Run(ctx)
}

func mustSVID(src workload.Source) string {
	if s, err := src.GetX509SVID(); err == nil {
		return s.ID.String()
	}
	return ""
}

func newWorkloadHealthcheckCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "healthcheck",
		Short: "Exit 0 if the workload in this container has logged in with its current X509-SVID (for a HEALTHCHECK)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			listen, err := config.LoadWorkloadListen(config.Sources{Flags: g.setFlags(), EnvFile: g.envFile})
			if err != nil {
				return err
			}
			return healthz(cmd.Context(), g.stdout, listen, "workload")
		},
	}
}

// healthz asks http://addr/healthz (on 127.0.0.1 when addr names no host), prints the answer, and fails unless
// it is 200.
func healthz(ctx context.Context, out io.Writer, addr, what string) error {
	return healthzWith(ctx, http.DefaultClient, out, "http", addr, what)
}

// healthzWith asks scheme://addr/healthz with hc (on 127.0.0.1 when addr names no host or a wildcard).
func healthzWith(ctx context.Context, hc *http.Client, out io.Writer, scheme, addr, what string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return &exitError{exitcode.InvalidConfig, fmt.Errorf("%s health address %q: %w", what, addr, err)}
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+net.JoinHostPort(host, port)+"/healthz", nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return &exitError{exitcode.Unreachable, err}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	fmt.Fprint(out, string(body))
	if resp.StatusCode != http.StatusOK {
		return &exitError{exitcode.StepFailed, fmt.Errorf("%s unhealthy (%s)", what, resp.Status)}
	}
	return nil
}

// exitFor gives err the exit code of its kind (exitcode.For); an interrupted run ends without error.
func exitFor(err error) error {
	_, coded := exitcode.Carried(err)
	switch {
	case err == nil, errors.Is(err, context.Canceled):
		return nil
	case coded, config.IsInvalid(err):
		return err
	}
	return &exitError{exitcode.For(err), err}
}
