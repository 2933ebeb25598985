package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/spf13/cobra"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/devenv"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/exitcode"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/render"
	"github.com/ziti-bootstrap/ziti-bootstrap/stacks"
)

// renderOptions are the flags of render.
type renderOptions struct {
	out            string
	stack, compose bool
	project        string
	host           string
	without        []string
}

// newRenderCommand is `ziti-bootstrap render`: the stacks as plain files for docker stack deploy and compose.
func newRenderCommand(g *globals) *cobra.Command {
	o := &stackOptions{}
	dev := &devOptions{}
	r := &renderOptions{}
	cmd := &cobra.Command{
		Use:   "render --out DIR [--stack|--compose]",
		Short: "Write the stacks as plain files: stack files for docker stack deploy, a compose project for one engine",
		Long: `Writes into DIR, from the stack files embedded in ziti-bootstrap and the configuration (the same variables and
defaults as up; --dev: the same generated secrets), files that run without ziti-bootstrap:

  DIR/stack/    spire.yml, keycloak.yml, openziti.yml with their secrets and configs as files, for
                docker stack deploy -c (objects named and labelled as up names them)
  DIR/compose/  compose.yml, one project for one Docker Engine without Swarm (needs --dev: the SPIRE agent's
                node certificate is generated into the dev state)
  DIR/README.md the order to deploy them in and what to wait for

Without --stack or --compose both are written. The files are generated: never edit them, render again. The
same definitions and configuration give byte-identical files. DIR is replaced whole (it must be new, empty, or
a previous render); it holds secrets and is made 0700. SPIRE_NODE_CA, unless set, is read from the Swarm for the
stack files, as up reads it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if r.out == "" {
				return &exitError{exitcode.InvalidConfig, errors.New("--out: give the directory to write into")}
			}
			if !r.stack && !r.compose {
				r.stack, r.compose = true, true
			}
			files, _, err := renderFiles(cmd.Context(), g, o, dev, r)
			if err != nil {
				return err
			}
			if err := render.Write(r.out, files); err != nil {
				return renderError(err)
			}
			_, err = fmt.Fprintf(g.stdout, "rendered %d files into %s (see %s/README.md)\n", len(files), r.out, r.out)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&r.out, "out", "", "directory to write (new, empty, or a previous render: replaced whole)")
	f.BoolVar(&r.stack, "stack", false, "write the stack files for docker stack deploy (default: both)")
	f.BoolVar(&r.compose, "compose", false, "write the compose project (default: both; needs --dev)")
	f.StringVar(&r.project, "project", render.DefaultProject, "compose project name (the SPIRE entries select its containers by it)")
	f.StringVar(&r.host, "publish-address", "127.0.0.1", "address of this machine the compose project publishes its ports on")
	f.StringVar(&o.prefix, "prefix", "", "prefix of the stack names (stacks are <prefix>spire, <prefix>keycloak, <prefix>openziti)")
	f.StringArrayVar(&o.vars, "var", nil, "set a stack variable, NAME=VALUE (repeatable; the same as --set)")
	f.BoolVar(&o.externalKeycloak, "external-keycloak", false, "Keycloak runs elsewhere (KEYCLOAK_URL): leave its stack out")
	f.StringSliceVar(&r.without, "without", nil, "leave these services out (backup is left out unless BACKUP_SCHEDULE is set)")
	f.BoolVar(&dev.enabled, "dev", false, "local development: the secrets and PKI of up --dev (generated once into --state-dir)")
	f.StringVar(&dev.stateDir, "state-dir", "", "directory of --dev's generated settings (default "+devenv.DefaultDir()+")")
	return cmd
}

// renderFiles renders what r asks for from the configuration, and returns the configuration it read.
func renderFiles(ctx context.Context, g *globals, o *stackOptions, dev *devOptions, r *renderOptions) ([]render.File, *config.Stack, error) {
	if r.compose && !dev.enabled {
		return nil, nil, &exitError{exitcode.InvalidConfig, errors.New("--compose needs --dev: the SPIRE agent of a compose project attests with a node certificate of the dev state")}
	}
	names, err := o.selected()
	if err != nil {
		return nil, nil, err
	}
	var defaults map[string]string
	var state *devenv.State
	if dev.enabled {
		if defaults, err = dev.defaults(g); err != nil {
			return nil, nil, err
		}
		if state, err = devenv.Ensure(dev.dir()); err != nil {
			return nil, nil, &exitError{exitcode.InvalidConfig, err}
		}
	}
	sc, err := g.stackConfig(o, defaults)
	if err != nil {
		return nil, nil, err
	}
	without := slices.Clone(r.without)
	if sc.Vars["BACKUP_SCHEDULE"] == "" {
		without = append(without, backupService, backupDocker)
	} else if err := g.checkBackupService(sc, o.externalKeycloak); err != nil {
		return nil, nil, err
	}
	opts := render.Options{Stack: names, Project: r.project, Host: r.host,
		Stacks: stacks.Options{Names: stacks.DefaultNames(o.prefix), Without: without, ExternalKeycloak: o.externalKeycloak},
		// POLICIES_FILE, SPIRE_ENTRIES_FILE: checked and shipped to the bootstrap as configs, as up does
		Adjust: func(st *stacks.Stack) error { return addJobFiles(st, sc.Vars) },
		// the controller's CA does not exist yet: up pins it (upcapin.go), rendered files trust it on first contact
		FirstContact: ctrlCAServices}
	var files []render.File
	if r.compose {
		id, err := state.EnsureNodeIdentity()
		if err != nil {
			return nil, nil, &exitError{exitcode.InvalidConfig, fmt.Errorf("dev state: the compose node identity: %w", err)}
		}
		co := opts
		co.Stacks.Vars = maps.Clone(sc.Vars)
		co.Stacks.Vars["SPIRE_NODE_CA"] = string(id.CA)
		co.Node = &render.NodeIdentity{Cert: id.Cert, Key: id.Key}
		cf, err := render.Compose(ctx, co)
		if err != nil {
			return nil, nil, renderError(err)
		}
		files = append(files, cf...)
	}
	if r.stack {
		facts := swarmFacts{nodeCA: sc.Vars["SPIRE_NODE_CA"] == "", datastore: sc.Vars["SPIRE_DATASTORE_SUFFIX"] == "" && slices.Contains(names, stacks.Spire)}
		if facts.nodeCA || facts.datastore {
			if err := facts.read(ctx, g.log, sc, stacks.DefaultNames(o.prefix)[stacks.Spire]); err != nil {
				return nil, nil, err
			}
		}
		so := opts
		so.Stacks.Vars = sc.Vars
		sf, err := render.Stacks(ctx, so)
		if err != nil {
			return nil, nil, renderError(err)
		}
		files = append(files, sf...)
	}
	return append(files, render.Readme(opts, r.stack, r.compose)), sc, nil
}

// renderError gives bad input exit code 2, anything else 1.
func renderError(err error) error {
	var inv *render.InvalidError
	if errors.As(err, &inv) || stacks.IsInvalid(err) || config.IsInvalid(err) {
		return &exitError{exitcode.InvalidConfig, err}
	}
	return err
}
