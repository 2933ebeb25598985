// Package stacks holds the Swarm stack files ziti-bootstrap deploys (SPIRE, Keycloak + PostgreSQL, OpenZiti),
// embedded in the binary, and turns them into Docker Engine objects.
//
// Load parses one stack file with compose-go (the library `docker stack deploy` uses), with variable
// interpolation from a map, and converts it, without any API call, into the networks, secrets, configs, volumes
// and service specs that `docker stack deploy` would create: every object is named <namespace>_<key> and
// labelled com.docker.stack.namespace=<namespace>, so `docker stack ls/ps/rm` work on what ziti-bootstrap
// deployed. Two differences from `docker stack deploy`, both because Swarm secrets and configs are immutable:
// their data comes from the variables (the `environment:` source) or from a file of this package (the `file:`
// source, interpolated like the stack file), and their names carry a hash of the data
// (<namespace>_<key>_<hash8>), so that changed data is a new object the services switch to.
//
// Every problem (an unknown key, a bad interpolation, a missing image or variable, an option Swarm cannot
// honour) is reported before anything is written, naming the file, the line and the key.
package stacks

import (
	"embed"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
)

//go:embed *.yml config
var files embed.FS

// The stacks, in deployment order: each is deployed once the previous one is healthy.
const (
	Spire    = "spire"
	Keycloak = "keycloak"
	OpenZiti = "openziti"
)

// All lists the stacks in deployment order.
var All = []string{Spire, Keycloak, OpenZiti}

// File returns the embedded file name of stack name ("spire" → "spire.yml").
func File(name string) string { return name + ".yml" }

// Read returns the text of an embedded file (a stack file or one under config/), for users to read.
func Read(path string) ([]byte, error) { return files.ReadFile(path) }

// Labels on every object ziti-bootstrap creates, as `docker stack deploy` sets them.
const (
	LabelNamespace = "com.docker.stack.namespace"
	LabelImage     = "com.docker.stack.image"
	// LabelKey names the compose key a secret or config was made from (its name also carries a data hash).
	LabelKey = "org.ziti-bootstrap.key"
	// LabelSeed marks a config that seeds a server's first start (AddSeedConfig): named without a data hash,
	// never replaced.
	LabelSeed = "org.ziti-bootstrap.seed"
)

// Names maps each stack to its namespace on the Swarm (the name `docker stack ls` shows).
type Names map[string]string

// DefaultNames returns the namespaces prefix+"spire", prefix+"keycloak" and prefix+"openziti".
func DefaultNames(prefix string) Names {
	n := Names{}
	for _, s := range All {
		n[s] = prefix + s
	}
	return n
}

// vars returns the variables the stack files use to name the other stacks' objects (ZB_STACK_SPIRE, …).
func (n Names) vars() map[string]string {
	out := map[string]string{}
	for _, s := range All {
		out["ZB_STACK_"+strings.ToUpper(s)] = n[s]
	}
	return out
}

// Variables lists the variables the stack files and their configs read (${NAME…}), sorted; the ZB_STACK_*
// variables are set by Load from the stack names. The caller may change the list.
func Variables() ([]string, error) {
	vs, err := variables()
	return slices.Clone(vs), err
}

// variables is Variables, read once a process: the embedded files never change.
var variables = sync.OnceValues(func() ([]string, error) {
	seen := map[string]bool{}
	var walk func(dir string) error
	walk = func(dir string) error {
		entries, err := files.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, e := range entries {
			p := e.Name()
			if dir != "." {
				p = dir + "/" + p
			}
			if e.IsDir() {
				if err := walk(p); err != nil {
					return err
				}
				continue
			}
			b, err := files.ReadFile(p)
			if err != nil {
				return err
			}
			for _, v := range readVars(b) {
				seen[v] = true
			}
		}
		return nil
	}
	if err := walk("."); err != nil {
		return nil, err
	}
	// environment: sources of secrets and configs name variables too
	for _, name := range All {
		b, err := files.ReadFile(File(name))
		if err != nil {
			return nil, err
		}
		for l := range strings.Lines(string(b)) {
			if v, ok := envSource(l); ok {
				seen[v] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return slices.Compact(out), nil
})

// envSource returns the variable an indented `environment: NAME` line of a stack file names (the source of a
// secret or config), if line is one.
func envSource(line string) (string, bool) {
	if line == "" || line[0] != ' ' && line[0] != '\t' {
		return "", false
	}
	rest, ok := strings.CutPrefix(strings.TrimLeft(line, " \t"), "environment:")
	name := strings.TrimSpace(rest)
	if !ok || len(rest) == len(strings.TrimLeft(rest, " \t")) || name == "" || '0' <= name[0] && name[0] <= '9' {
		return "", false
	}
	for _, c := range []byte(name) {
		if c != '_' && (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return "", false
		}
	}
	return name, true
}

// Stack is one stack file converted to Swarm objects: what `docker stack deploy` would create.
type Stack struct {
	Name      string // "spire"
	File      string // "spire.yml"
	Namespace string // com.docker.stack.namespace of every object
	Networks  []Network
	Secrets   []Object
	Configs   []Object
	Volumes   []Volume
	Services  []Service
	// Seeds are the configs AddSeedConfig mounted.
	Seeds []Seed
}

// Seed is a config that seeds a server's first start (AddSeedConfig): Config mounted in Service (its full name),
// whose environment names the file with Env.
type Seed struct{ Service, Config, Env string }

// Network is an overlay network of the stack, or an external one that must exist.
type Network struct {
	Key      string // compose key
	Name     string // <namespace>_<key>, or the external name
	External bool
	Driver   string
	Options  map[string]string
	Labels   map[string]string
	Internal bool
	// Attachable lets standalone containers and other stacks' services join.
	Attachable bool
}

// Object is the data of a Swarm secret or config. Name carries a hash of Data: objects are immutable.
type Object struct {
	Key    string // compose key
	Name   string // <namespace>_<key>_<hash8>
	Data   []byte
	Labels map[string]string
}

func (o Object) String() string { return o.Name } // never the data: it may be a secret

// GoString keeps the data of secrets out of %#v.
func (o Object) GoString() string {
	return fmt.Sprintf("stacks.Object{Key:%q, Name:%q}", o.Key, o.Name)
}

// Volume is a named volume the stack's services mount. Swarm creates it on each node that runs such a task.
type Volume struct {
	Key      string
	Name     string // <namespace>_<key>, or the external name
	External bool
	Driver   string
	Labels   map[string]string
}

// SecretVariables lists the variables that hold the data of secrets (the `environment:` sources under the
// top-level `secrets:` of the stack files), sorted: they must not be given on a command line.
func SecretVariables() []string {
	seen := map[string]bool{}
	for _, name := range All {
		b, err := files.ReadFile(File(name))
		if err != nil {
			continue
		}
		in := false
		for _, l := range strings.Split(string(b), "\n") {
			if l != "" && l[0] != ' ' && l[0] != '#' {
				in = strings.HasPrefix(l, "secrets:")
				continue
			}
			if v, ok := envSource(l); in && ok {
				seen[v] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
