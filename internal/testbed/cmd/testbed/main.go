// Command testbed starts and stops the real servers ziti-bootstrap is tested against.
//
//	go run ./internal/testbed/cmd/testbed up [postgres keycloak ziti spire s3 docker]
//	go run ./internal/testbed/cmd/testbed down [--purge]
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"slices"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: testbed up [server...] | down [--purge] | env")
		os.Exit(2)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt)
	defer cancel()
	switch os.Args[1] {
	case "up":
		in, err := testbed.Up(ctx, os.Args[2:], os.Stderr)
		if in != nil {
			if p, werr := testbed.WriteEnv(in); werr == nil {
				fmt.Fprintf(os.Stderr, "[testbed] state %s; ziti-bootstrap env file %s\n", testbed.StateFile(), p)
			}
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "testbed up:", err)
			os.Exit(1)
		}
	case "down":
		if err := testbed.Down(slices.Contains(os.Args[2:], "--purge")); err != nil {
			fmt.Fprintln(os.Stderr, "testbed down:", err)
			os.Exit(1)
		}
	case "env":
		in, err := testbed.Read()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		p, err := testbed.WriteEnv(in)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println(p)
	default:
		fmt.Fprintf(os.Stderr, "unknown command %q\n", os.Args[1])
		os.Exit(2)
	}
}
