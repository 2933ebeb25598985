package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ziti-bootstrap/ziti-bootstrap/app/command"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func newVersionCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of ziti-bootstrap",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprintln(g.stdout, command.Version(version))
			return err
		},
	}
}
