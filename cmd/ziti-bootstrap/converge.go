package main

import (
	"fmt"
	"net/http"

	"github.com/spf13/cobra"

	"github.com/ziti-bootstrap/ziti-bootstrap/app/services"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/exitcode"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/httpserve"
)

func newConvergeCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "converge",
		Short: "Keep every system converged: apply on an interval and at once when SPIRE's trust bundle changes (a long-running service)",
		Long: `Runs as a long-lived service (the OpenZiti stack's converge service) and converges every system like apply:
at start, every ZB_CONVERGE_INTERVAL, and at once when SPIRE's trust bundle changes (read every
ZB_CONVERGE_BUNDLE_POLL through SPIRE's bundle API): a new SPIRE root is bound in OpenZiti, verified, within
seconds, and an object the tool owns that was deleted or changed by hand is put back at the next pass.

Each pass reads the configuration again; a new root is verified with SPIRE_UPSTREAM_CA_KEY or through the SPIRE
CA signer (SPIRE_CA_SIGNER, as in the Swarm, where the key stays in the SPIRE stack). It takes the lock of
apply, up, down, backup and restore. It never waits for a lock another run holds, nor takes it over: it skips
the pass and tries again 15 s later (ZB_LOCK_WAIT does not apply). After a failed pass it waits
ZB_CONVERGE_BACKOFF, doubled after every failure in a row, up to ZB_CONVERGE_INTERVAL.

It serves on ZB_CONVERGE_LISTEN: /metrics (Prometheus: ziti_bootstrap_converge_last_success_timestamp_seconds,
_last_drift_changes, _writes_total, _step_failures_total{step}, _runs_total{result}, _triggers_total{reason},
_bundle_changes_total, …), /healthz (503 once 3 passes in a row failed: 'converge healthcheck' is the container's
health check) and /status (JSON, read by 'status').`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return services.Converge(cmd.Context(), g.cli())
		},
	}
	cmd.AddCommand(newHealthcheckCommand(g, "converge service", "ZB_CONVERGE_LISTEN", config.LoadConvergeListen),
		newLocalGetCommand(g, "metrics", "Print the metrics of the converge service on this host (its /metrics; the image has no curl)",
			"/metrics", "converge service", "ZB_CONVERGE_LISTEN", config.LoadConvergeListen))
	return cmd
}

// newHealthcheckCommand is the health check of a long-lived service of the tool (for images without curl,
// FROM scratch): it asks the service's /healthz on this host, at the address of the variable listenVar.
func newHealthcheckCommand(g *globals, what, listenVar string, load func(config.Sources) (string, error)) *cobra.Command {
	return newLocalGetCommand(g, "healthcheck", "Exit 0 if the "+what+" on this host is healthy (for a container HEALTHCHECK)",
		"/healthz", what, listenVar, load)
}

// newLocalGetCommand prints what a long-lived service of the tool on this host serves at path (for images without
// curl); it exits 4 unless the answer is 200 OK.
func newLocalGetCommand(g *globals, use, short, path, what, listenVar string, load func(config.Sources) (string, error)) *cobra.Command {
	var addr string
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if addr == "" {
				listen, err := load(g.cli().Sources())
				if err != nil {
					return err
				}
				addr = listen
			}
			status, err := httpserve.Get(cmd.Context(), addr, path, g.stdout)
			switch {
			case err != nil:
				return &exitError{exitcode.Unreachable, err}
			case status != http.StatusOK:
				return &exitError{exitcode.StepFailed, fmt.Errorf("%s %s: HTTP %d", what, path, status)}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "", "address of the service (default: "+listenVar+", on 127.0.0.1 when it names no host)")
	return cmd
}
