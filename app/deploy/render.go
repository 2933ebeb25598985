package deploy

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/ziti-bootstrap/ziti-bootstrap/app/capin"
	"github.com/ziti-bootstrap/ziti-bootstrap/app/command"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/devenv"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/exitcode"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/render"
	"github.com/ziti-bootstrap/ziti-bootstrap/stacks"
)

// RenderOptions are the flags of render.
type RenderOptions struct {
	Out            string
	Stack, Compose bool
	Project        string
	Host           string
	Without        []string
}

// Render renders what r asks for from the configuration, and returns the configuration it read.
func Render(ctx context.Context, c *command.CLI, o *StackOptions, dev *DevOptions, r *RenderOptions) ([]render.File, *config.Stack, error) {
	if r.Compose && !dev.Enabled {
		return nil, nil, exitcode.With(exitcode.InvalidConfig, errors.New("--compose needs --dev: the SPIRE agent of a compose project attests with a node certificate of the dev state"))
	}
	names, err := o.Selected()
	if err != nil {
		return nil, nil, err
	}
	var defaults map[string]string
	var state *devenv.State
	if dev.Enabled {
		if defaults, err = dev.Defaults(c); err != nil {
			return nil, nil, err
		}
		if state, err = devenv.Ensure(dev.Dir()); err != nil {
			return nil, nil, exitcode.With(exitcode.InvalidConfig, err)
		}
	}
	sc, err := LoadStack(c, o, defaults)
	if err != nil {
		return nil, nil, err
	}
	without := slices.Clone(r.Without)
	if sc.Vars["BACKUP_SCHEDULE"] == "" {
		without = append(without, stacks.BackupService, stacks.BackupDockerService)
	} else if err := CheckBackupService(c, sc, o.ExternalKeycloak); err != nil {
		return nil, nil, err
	}
	opts := render.Options{Stack: names, Project: r.Project, Host: r.Host,
		Stacks: stacks.Options{Names: stacks.DefaultNames(o.Prefix), Without: without, ExternalKeycloak: o.ExternalKeycloak, Parsed: stacks.NewParseCache()}, // each file parsed once for both
		// POLICIES_FILE, SPIRE_ENTRIES_FILE: checked and shipped to the bootstrap as configs, as up does
		Adjust: func(st *stacks.Stack) error { return AddJobFiles(st, sc.Vars) },
		// the controller's CA does not exist yet: up pins it (app/capin), rendered files trust it on first contact
		FirstContact: capin.Clients}
	var files []render.File
	if r.Compose {
		id, err := state.EnsureNodeIdentity()
		if err != nil {
			return nil, nil, exitcode.With(exitcode.InvalidConfig, fmt.Errorf("dev state: the compose node identity: %w", err))
		}
		co := opts
		co.Stacks.Vars = maps.Clone(sc.Vars)
		co.Stacks.Vars["SPIRE_NODE_CA"] = string(id.CA)
		co.Node = &render.NodeIdentity{Cert: id.Cert, Key: id.Key}
		cf, err := render.Compose(ctx, co)
		if err != nil {
			return nil, nil, RenderError(err)
		}
		files = append(files, cf...)
	}
	if r.Stack {
		facts := SwarmFacts{NodeCA: sc.Vars["SPIRE_NODE_CA"] == "", Datastore: sc.Vars["SPIRE_DATASTORE_SUFFIX"] == "" && slices.Contains(names, stacks.Spire)}
		if facts.NodeCA || facts.Datastore {
			if err := facts.Read(ctx, c.Log, sc, stacks.DefaultNames(o.Prefix)[stacks.Spire]); err != nil {
				return nil, nil, err
			}
		}
		so := opts
		so.Stacks.Vars = sc.Vars
		sf, err := render.Stacks(ctx, so)
		if err != nil {
			return nil, nil, RenderError(err)
		}
		files = append(files, sf...)
	}
	return append(files, render.Readme(opts, r.Stack, r.Compose)), sc, nil
}

// RenderError gives bad input exit code 2, anything else 1.
func RenderError(err error) error {
	var inv *render.InvalidError
	if errors.As(err, &inv) || stacks.IsInvalid(err) || config.IsInvalid(err) {
		return exitcode.With(exitcode.InvalidConfig, err)
	}
	return err
}

// RenderTo is `render`: it writes what r asks for (both kinds when it asks for neither) into r.Out.
func RenderTo(ctx context.Context, c *command.CLI, o *StackOptions, dev *DevOptions, r *RenderOptions) error {
	if r.Out == "" {
		return exitcode.With(exitcode.InvalidConfig, errors.New("--out: give the directory to write into"))
	}
	if !r.Stack && !r.Compose {
		r.Stack, r.Compose = true, true
	}
	files, _, err := Render(ctx, c, o, dev, r)
	if err != nil {
		return err
	}
	if err := render.Write(r.Out, files); err != nil {
		return RenderError(err)
	}
	_, err = fmt.Fprintf(c.Stdout, "rendered %d files into %s (see %s/README.md)\n", len(files), r.Out, r.Out)
	return err
}
