// Command testbed starts and stops the real servers ziti-bootstrap is tested against.
//
//	go run ./internal/testbed/cmd/testbed up [postgres keycloak ziti spire s3 docker] [swarm3 swarm3m]
//	go run ./internal/testbed/cmd/testbed down [--purge] [swarm3 swarm3m]
//
// swarm3 and swarm3m are multi-node test beds (three Docker Engines in containers, joined as a Swarm: one manager
// and two workers, or three managers); `up` with no name starts the servers only; `down` with no name stops the
// servers and removes every multi-node test bed, `down swarm3` removes that bed only.
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
		fmt.Fprintln(os.Stderr, "usage: testbed up [server...] [swarm3 swarm3m] | down [--purge] [swarm3 swarm3m] | env")
		os.Exit(2)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt)
	defer cancel()
	switch os.Args[1] {
	case "up":
		servers, swarms := split(os.Args[2:])
		for _, name := range swarms {
			if _, err := testbed.UpSwarm(ctx, name, os.Stderr); err != nil {
				fmt.Fprintln(os.Stderr, "testbed up:", err)
				os.Exit(1)
			}
			fmt.Fprintf(os.Stderr, "[testbed] %s: state %s\n", name, testbed.SwarmStateFile(name))
		}
		if len(swarms) > 0 && len(servers) == 0 {
			return
		}
		in, err := testbed.Up(ctx, servers, os.Stderr)
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
		_, swarms := split(os.Args[2:])
		if err := testbed.DownSwarm(ctx, swarms...); err != nil {
			fmt.Fprintln(os.Stderr, "testbed down:", err)
			os.Exit(1)
		}
		if len(swarms) > 0 {
			return
		}
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

// split separates the names of multi-node test beds from the other arguments.
func split(args []string) (rest, swarms []string) {
	for _, a := range args {
		if testbed.IsSwarm(a) {
			swarms = append(swarms, a)
		} else {
			rest = append(rest, a)
		}
	}
	return rest, swarms
}
