package main

import (
	"github.com/spf13/cobra"

	"github.com/ziti-bootstrap/ziti-bootstrap/app/services"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
)

func newRouterEnrolServerCommand(g *globals) *cobra.Command {
	return newServiceCommand(g, &cobra.Command{
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
	}, config.LoadRouterEnrolServer, services.RouterEnrolServer,
		// The healthcheck checks the server over its own TLS: it must answer /healthz presenting this container's
		// SPIFFE ID (it runs in the server's container, so the agent gives it the same SVID and bundle).
		"Exit 0 if the router enrolment server in this container answers over TLS with this container's SPIFFE ID",
		config.LoadRouterEnrolServerHealth, services.RouterEnrolServerHealth)
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
			c := g.cli()
			cfg, err := services.RouterEnrolConfig(c, o.server, o.serverID, o.out)
			if err != nil {
				return err
			}
			return services.ExitFor(services.RouterEnrol(cmd.Context(), c, cfg, o.out, o.reenrol))
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.server, "server", "", "the enrolment server's URL, https://host:port (ZB_ROUTER_ENROL_URL)")
	f.StringVar(&o.serverID, "server-id", "", "the SPIFFE ID the enrolment server must present (ZB_ROUTER_ENROL_SERVER_ID)")
	f.StringVar(&o.out, "out", "", "file to write the enrolment JWT to (mode 0600, replaced atomically)")
	f.BoolVar(&o.reenrol, "reenrol", false, "re-enrol the router if it is enrolled already (it lost its identity)")
	return cmd
}
