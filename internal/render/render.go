// Package render writes the stacks ziti-bootstrap deploys as plain files, for users of `docker stack deploy` and
// of compose on one Docker Engine without Swarm: the same definitions (the embedded stack files, parsed and
// interpolated by package stacks) and the same configuration, never edited by hand.
//
// The stack files (Stacks) work unchanged with `docker stack deploy -c`: every value is literal (a `$` is
// written `$$`, so the CLI's own interpolation gives it back), and every secret and config is a file beside
// them, named as `up` names it (<namespace>_<key>_<hash8>) and labelled as `up` labels it, so a stack deployed
// either way is the same to `up`, `down` and `plan`.
//
// The compose project (Compose) is one project for one engine: the services of the three stacks (without the
// Swarm-only backup service), bridge networks, the same volumes and health checks, `depends_on` with
// `condition: service_healthy` for the order of the stacks, secrets and configs as read-only bind mounts of
// files, the SPIRE agent as a service with the host's PID namespace (attested with a node certificate of the
// dev state instead of a Swarm one), and the bootstrap as a one-shot service that runs `apply` and selects the
// project's containers by their compose labels (ZB_COMPOSE_PROJECT).
//
// Output is deterministic: the same definitions and configuration give byte-identical files.
package render

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/ziti-bootstrap/ziti-bootstrap/stacks"
)

// File is one rendered file, its path relative to the output directory.
type File struct {
	Path string
	Data []byte
	Mode fs.FileMode
}

// Options say what to render.
type Options struct {
	// Stacks are the load options of package stacks: the namespaces, the variables (the configuration), the
	// services left out, an external Keycloak, and (tests) other definitions than the embedded ones.
	Stacks stacks.Options
	// Stack lists the stacks to render, in deployment order; nil means all of stacks.All (less Keycloak's when
	// it is external).
	Stack []string
	// Project is the compose project name (Compose only); "" means DefaultProject.
	Project string
	// Node is the SPIRE agent's node certificate and key for the compose project (x509pop, issued by the CA in
	// the variable SPIRE_NODE_CA). Compose only; required there.
	Node *NodeIdentity
	// Host is the address ports are published on in the compose project; "" means 127.0.0.1 (a laptop's
	// services are not for the network unless asked for).
	Host string
	// Adjust, when set, changes each loaded stack as up does before it deploys it (up ships the operator's
	// POLICIES_FILE and SPIRE_ENTRIES_FILE to the bootstrap job as configs: stacks.(*Stack).AddConfig); the
	// configs it adds, their mounts and environment variables are rendered too.
	Adjust func(*stacks.Stack) error
	// FirstContact lists the services (compose keys) that call the controller with its admin password. The
	// rendered files cannot carry the controller's CA, which the controller makes at its first start (up pins it
	// then, as a config): these services trust it on first contact (ZITI_CA_TOFU=true), and the README says so.
	FirstContact []string
}

// NodeIdentity is a PEM certificate and private key.
type NodeIdentity struct{ Cert, Key []byte }

// DefaultProject is the compose project name unless told otherwise.
const DefaultProject = "ziti-bootstrap"

// Layout of the output directory.
const (
	StackDir   = "stack"
	ComposeDir = "compose"
	// ComposeFile is the compose project's file, in ComposeDir.
	ComposeFile = "compose.yml"
	// Marker is written into every rendered directory: Write replaces only a directory that has it.
	Marker = ".ziti-bootstrap-render"
)

func (o Options) stackNames() []string {
	if o.Stack != nil {
		return o.Stack
	}
	var out []string
	for _, s := range stacks.All {
		if !(o.Stacks.ExternalKeycloak && s == stacks.Keycloak) {
			out = append(out, s)
		}
	}
	return out
}

func (o Options) names() stacks.Names {
	if o.Stacks.Names != nil {
		return o.Stacks.Names
	}
	return stacks.DefaultNames("")
}

// loaded is one stack: compose-go's project as a YAML tree, and the converted stack (its objects' names and data).
type loaded struct {
	name  string
	tree  map[string]any
	stack *stacks.Stack
}

func load(ctx context.Context, o Options) ([]loaded, error) {
	var out []loaded
	var errs []error
	for _, name := range o.stackNames() {
		st, err := stacks.Load(ctx, name, o.Stacks)
		if err == nil && o.Adjust != nil {
			err = o.Adjust(st)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		p, err := stacks.Project(ctx, name, o.Stacks)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		b, err := p.MarshalYAML()
		if err != nil {
			errs = append(errs, fmt.Errorf("stack %s: %w", name, err))
			continue
		}
		var tree map[string]any
		if err := yaml.Unmarshal(b, &tree); err != nil {
			errs = append(errs, fmt.Errorf("stack %s: %w", name, err))
			continue
		}
		delete(tree, "name") // the namespace is the command line's (docker stack deploy … NAME) or the project's
		addedConfigs(tree, st)
		firstContact(tree, o.FirstContact)
		out = append(out, loaded{name: name, tree: tree, stack: st})
	}
	return out, errors.Join(errs...)
}

// addedConfigs puts into the tree the configs that Adjust added to the stack: the config, its mount in the
// service and the variable naming its path.
func addedConfigs(tree map[string]any, st *stacks.Stack) {
	defs := mapOf(tree["configs"])
	for _, obj := range st.Configs {
		if _, ok := defs[obj.Key]; ok {
			continue
		}
		if defs == nil {
			defs = map[string]any{}
			tree["configs"] = defs
		}
		defs[obj.Key] = map[string]any{} // Stacks and Compose write its definition from the stack's object
		for _, svc := range st.Services {
			cs := svc.Spec.TaskTemplate.ContainerSpec
			s := mapOf(mapOf(tree["services"])[svc.Key])
			for _, ref := range cs.Configs {
				if ref.ConfigName != obj.Name || ref.File == nil || s == nil {
					continue
				}
				s["configs"] = append(listOf(s["configs"]), map[string]any{"source": obj.Key, "target": ref.File.Name,
					"mode": fmt.Sprintf("%04o", ref.File.Mode), "uid": ref.File.UID, "gid": ref.File.GID})
				env := mapOf(s["environment"])
				for _, kv := range cs.Env {
					if k, v, _ := strings.Cut(kv, "="); v == ref.File.Name && env != nil {
						env[k] = v
					}
				}
			}
		}
	}
}

// firstContact sets ZITI_CA_TOFU=true for the services of tree named in keys (Options.FirstContact).
func firstContact(tree map[string]any, keys []string) {
	for _, k := range keys {
		s := mapOf(mapOf(tree["services"])[k])
		if s == nil {
			continue
		}
		env := mapOf(s["environment"])
		if env == nil {
			env = map[string]any{}
			s["environment"] = env
		}
		env["ZITI_CA_TOFU"] = "true"
	}
}

// Stacks renders the stack files for `docker stack deploy -c`, their secrets and configs, and the README that
// says in which order to deploy them and what to wait for. Paths are under StackDir.
func Stacks(ctx context.Context, o Options) ([]File, error) {
	all, err := load(ctx, o)
	if err != nil {
		return nil, err
	}
	var files []File
	for _, l := range all {
		for kind, objs := range map[string][]stacks.Object{"secrets": l.stack.Secrets, "configs": l.stack.Configs} {
			defs := map[string]any{}
			for _, obj := range objs {
				labels := maps.Clone(obj.Labels)
				delete(labels, stacks.LabelNamespace) // docker stack deploy sets it
				def := map[string]any{"name": obj.Name, "file": "./" + kind + "/" + obj.Name}
				if len(labels) > 0 {
					def["labels"] = labels
				}
				defs[obj.Key] = def
				mode := fs.FileMode(0o644)
				if kind == "secrets" {
					mode = 0o600
				}
				files = append(files, File{Path: path.Join(StackDir, kind, obj.Name), Data: obj.Data, Mode: mode})
			}
			if len(defs) > 0 {
				l.tree[kind] = defs
			}
		}
		for name, svc := range mapOf(l.tree["services"]) {
			s := mapOf(svc)
			for _, kind := range []string{"secrets", "configs"} {
				for _, ref := range listOf(s[kind]) {
					octalMode(mapOf(ref))
				}
			}
			// the Docker CLI gives every network attachment the service's key as an alias, and keeps a repeat of
			// it, which up does not: leave it out
			for _, n := range mapOf(s["networks"]) {
				if nm := mapOf(n); nm != nil {
					aliases := slices.DeleteFunc(slices.Clone(listOf(nm["aliases"])), func(a any) bool { return a == name })
					if len(aliases) == 0 {
						delete(nm, "aliases")
					} else {
						nm["aliases"] = aliases
					}
				}
			}
			// compose-go writes a secret's default target as /run/secrets/<source>; the Docker CLI would keep that
			// path where it (and up) name the file by the secret's source: leave the default out
			for _, ref := range listOf(s["secrets"]) {
				r := mapOf(ref)
				if r["target"] == "/run/secrets/"+fmt.Sprint(r["source"]) {
					delete(r, "target")
				}
			}
			for _, p := range listOf(s["ports"]) {
				numeric(mapOf(p), "published")
			}
			// the Docker CLI reads CPUs as strings only
			if lim := mapOf(mapOf(mapOf(s["deploy"])["resources"])["limits"]); lim != nil && lim["cpus"] != nil {
				lim["cpus"] = fmt.Sprint(lim["cpus"])
			}
			for _, v := range listOf(s["volumes"]) {
				if t := mapOf(mapOf(v)["tmpfs"]); t != nil {
					numeric(t, "size")
				}
			}
		}
		b, err := marshal(l.tree)
		if err != nil {
			return nil, fmt.Errorf("stack %s: %w", l.name, err)
		}
		header := fmt.Sprintf("# Generated by `ziti-bootstrap render` from stacks/%s: do not edit; render again.\n"+
			"# Deploy: docker stack deploy -c %s %s   (order and waits: ../README.md)\n", l.stack.File, l.stack.File, l.stack.Namespace)
		files = append(files, File{Path: path.Join(StackDir, l.stack.File), Data: append([]byte(header), b...), Mode: 0o644})
	}
	sortFiles(files)
	return files, nil
}

// octalMode turns a secret's or config's mode ("0400", as compose-go writes it) into the number the Docker CLI
// reads.
func octalMode(ref map[string]any) {
	if s, ok := ref["mode"].(string); ok {
		if n, err := strconv.ParseUint(s, 8, 32); err == nil {
			ref["mode"] = int(n)
		}
	}
}

// numeric turns m[key] into a number when it is a string of digits (compose-go writes published ports as strings).
func numeric(m map[string]any, key string) {
	if s, ok := m[key].(string); ok {
		if n, err := strconv.Atoi(s); err == nil {
			m[key] = n
		}
	}
}

func mapOf(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func listOf(v any) []any {
	l, _ := v.([]any)
	return l
}

// marshal writes a tree as YAML, map keys sorted, every `$` of a string doubled (the Docker CLI and compose
// interpolate what they read: `$$` is a literal `$`).
func marshal(tree map[string]any) ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(escape(tree)); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func escape(v any) any {
	switch t := v.(type) {
	case string:
		return strings.ReplaceAll(t, "$", "$$")
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, x := range t {
			out[k] = escape(x)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = escape(x)
		}
		return out
	case map[string]string:
		out := make(map[string]any, len(t))
		for k, x := range t {
			out[k] = escape(x)
		}
		return out
	}
	return v
}

func sortFiles(files []File) {
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
}

// hash8 is a short hash of s, for names that must change when s does.
func hash8(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:8]
}

// Write puts files into dir, replacing what a previous render left there; a directory that exists and was not
// rendered (no Marker) is refused, and nothing is written. The new tree is built beside dir and renamed into
// place, so dir is always either the old render or the new one. The directory is private (0700): it holds
// secrets.
func Write(dir string, files []File) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if fi, err := os.Stat(abs); err == nil {
		if !fi.IsDir() {
			return &InvalidError{fmt.Sprintf("--out %s: not a directory", dir)}
		}
		if _, err := os.Stat(filepath.Join(abs, Marker)); err != nil {
			entries, _ := os.ReadDir(abs)
			if len(entries) > 0 {
				return &InvalidError{fmt.Sprintf("--out %s: the directory exists and was not written by render (no %s): give a new or empty directory", dir, Marker)}
			}
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	parent := filepath.Dir(abs)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(abs)+".render-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	files = append(slices.Clone(files), File{Path: Marker, Data: []byte("written by ziti-bootstrap render: this directory is replaced whole by the next render\n"), Mode: 0o644})
	for _, f := range files {
		p := filepath.Join(tmp, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return err
		}
		if err := os.WriteFile(p, f.Data, f.Mode); err != nil {
			return err
		}
		if err := os.Chmod(p, f.Mode); err != nil { // not the umask's
			return err
		}
	}
	if err := os.Chmod(tmp, 0o700); err != nil {
		return err
	}
	old := ""
	if _, err := os.Stat(abs); err == nil {
		old = tmp + ".old"
		if err := os.Rename(abs, old); err != nil {
			return err
		}
	}
	if err := os.Rename(tmp, abs); err != nil {
		if old != "" {
			_ = os.Rename(old, abs)
		}
		return err
	}
	if old != "" {
		return os.RemoveAll(old)
	}
	return nil
}

// InvalidError is bad input to render: nothing was written.
type InvalidError struct{ Msg string }

func (e *InvalidError) Error() string { return e.Msg }
