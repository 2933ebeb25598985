package services

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/app/command"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/exitcode"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/spireagent"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/wait"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/workload"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/ziti"
)

// Workload runs the workload (internal/workload) until ctx ends, serving its /healthz on cfg.Listen.
func Workload(ctx context.Context, c *command.CLI, cfg config.Workload) error {
	w := &workload.Workload{Out: c.Stdout, Name: cfg.Name, Deadline: cfg.WaitTimeout, Where: cfg.Ziti.URL.Redacted()}
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
	c.Log.Info("workload started", "spiffeId", mustSVID(src), "controller", cfg.Ziti.URL.Redacted(), "healthz", ln.Addr().String())
	return w.Run(ctx)
}

func mustSVID(src workload.Source) string {
	if s, err := src.GetX509SVID(); err == nil {
		return s.ID.String()
	}
	return ""
}

// Healthz asks http://addr/healthz (on 127.0.0.1 when addr names no host), prints the answer, and fails unless
// it is 200.
func Healthz(ctx context.Context, out io.Writer, addr, what string) error {
	return HealthzWith(ctx, http.DefaultClient, out, "http", addr, what)
}

// HealthzWith asks scheme://addr/healthz with hc (on 127.0.0.1 when addr names no host or a wildcard).
func HealthzWith(ctx context.Context, hc *http.Client, out io.Writer, scheme, addr, what string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return exitcode.With(exitcode.InvalidConfig, fmt.Errorf("%s health address %q: %w", what, addr, err))
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
		return exitcode.With(exitcode.Unreachable, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	fmt.Fprint(out, string(body))
	if resp.StatusCode != http.StatusOK {
		return exitcode.With(exitcode.StepFailed, fmt.Errorf("%s unhealthy (%s)", what, resp.Status))
	}
	return nil
}

// ExitFor gives err the exit code of its kind (exitcode.For); an interrupted run ends without error.
func ExitFor(err error) error {
	_, coded := exitcode.Carried(err)
	switch {
	case err == nil, errors.Is(err, context.Canceled):
		return nil
	case coded, config.IsInvalid(err):
		return err
	}
	return exitcode.With(exitcode.For(err), err)
}
