package main

import (
	"github.com/spf13/cobra"

	"github.com/ziti-bootstrap/ziti-bootstrap/app/services"
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
			return services.CASigner(cmd.Context(), g.cli(), socket, keyFile)
		},
	}
	cmd.Flags().StringVar(&socket, "socket", defaultSignerSocket, "unix socket to serve on")
	cmd.Flags().StringVar(&keyFile, "key-file", "/run/secrets/spire_upstream_ca_key", "PEM private key(s) of SPIRE's upstream root(s)")
	health := &cobra.Command{
		Use:   "healthcheck",
		Short: "Exit 0 if the SPIRE CA signer on this socket holds a key (for a container HEALTHCHECK)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return services.CASignerHealth(cmd.Context(), g.cli(), socket)
		},
	}
	health.Flags().StringVar(&socket, "socket", defaultSignerSocket, "unix socket of the signer")
	cmd.AddCommand(health)
	return cmd
}
