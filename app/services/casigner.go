package services

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/app/command"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/casigner"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/exitcode"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/safefile"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps/spireca"
)

// CASigner serves the SPIRE CA signer (internal/casigner) on the unix socket with the root key(s) of keyFile
// until SIGTERM.
func CASigner(ctx context.Context, c *command.CLI, socket, keyFile string) error {
	raw, err := safefile.ReadValue(keyFile)
	if err != nil {
		return &config.Error{Problems: []config.Problem{{Var: "--key-file", Msg: fmt.Sprintf("cannot read %s: %v; point it at the PEM key of SPIRE's upstream root", keyFile, err)}}}
	}
	keys, err := spireca.ParseKeys(string(raw))
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, os.Interrupt)
	defer stop()
	c.Log.Info("SPIRE CA signer serving", "socket", socket, "keys", len(keys))
	return casigner.Serve(ctx, socket, (&casigner.Server{Keys: keys, Log: c.Log}).Handler())
}

// CASignerHealth asks the signer on socket whether it holds a key, and prints its answer.
func CASignerHealth(ctx context.Context, c *command.CLI, socket string) error {
	cl, err := casigner.Dial(socket)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	msg, err := cl.Health(ctx)
	if err != nil {
		return exitcode.With(exitcode.Unreachable, err)
	}
	fmt.Fprint(c.Stdout, msg)
	return nil
}
