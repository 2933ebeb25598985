package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/casigner"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/exitcode"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps/spireca"
)

const defaultSignerSocket = "/run/spire-ca-signer/api.sock"

func newCASignerCommand(g *globals) *cobra.Command {
	var socket, keyFile string
	cmd := &cobra.Command{
		Use:   "spire-ca-signer",
		Short: "Hold SPIRE's root key beside SPIRE's server and sign OpenZiti's CA verifications with it (a service of the SPIRE stack)",
		Long: `Serves, on a unix socket (mode 0600), the signatures the OpenZiti side needs to verify SPIRE's root in
OpenZiti, so that the OpenZiti stack never holds the root's key and a root rotation changes the SPIRE stack
only. It signs one kind of certificate: subject CN = OpenZiti's verification token, for a key pair it makes and
throws away, valid one hour, no CA, no subject alternative name. Clients: SPIRE_CA_SIGNER=unix://SOCKET.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			raw, err := os.ReadFile(keyFile)
			if err != nil {
				return &config.Error{Problems: []config.Problem{{Var: "--key-file", Msg: fmt.Sprintf("cannot read %s: %v; point it at the PEM key of SPIRE's upstream root", keyFile, err)}}}
			}
			keys, err := spireca.ParseKeys(string(raw))
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			g.log.Info("SPIRE CA signer serving", "socket", socket, "keys", len(keys))
			return casigner.Serve(ctx, socket, (&casigner.Server{Keys: keys, Log: g.log}).Handler())
		},
	}
	cmd.Flags().StringVar(&socket, "socket", defaultSignerSocket, "unix socket to serve on")
	cmd.Flags().StringVar(&keyFile, "key-file", "/run/secrets/spire_upstream_ca_key", "PEM private key(s) of SPIRE's upstream root(s)")
	health := &cobra.Command{
		Use:   "healthcheck",
		Short: "Exit 0 if the SPIRE CA signer on this socket holds a key (for a container HEALTHCHECK)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := casigner.Dial(socket)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 5*time.Second)
			defer cancel()
			msg, err := c.Health(ctx)
			if err != nil {
				return &exitError{exitcode.Unreachable, err}
			}
			fmt.Fprint(g.stdout, msg)
			return nil
		},
	}
	health.Flags().StringVar(&socket, "socket", defaultSignerSocket, "unix socket of the signer")
	cmd.AddCommand(health)
	return cmd
}
