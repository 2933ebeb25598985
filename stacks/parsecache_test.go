package stacks

import (
	"context"
	"crypto/rand"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
)

// config returns the data of the stack's config key.
func configData(t *testing.T, st *Stack, key string) string {
	t.Helper()
	for _, o := range st.Configs {
		if o.Key == key {
			return string(o.Data)
		}
	}
	t.Fatalf("stack %s has no config %s", st.Namespace, key)
	return ""
}

// up loads each stack three times (before any call, with what it read from the Swarm, and the OpenZiti stack
// with its controller alone): each file is parsed once; a variable the file reads is parsed again, one only its
// secrets and configs read (SPIRE_NODE_CA) is converted again from the same parse.
func TestParseCacheParsesEachFileOnceARun(t *testing.T) {
	ctx := context.Background()
	cache := NewParseCache()
	vars := fullVars()
	vars["SPIRE_NODE_CA"] = "(read from the Swarm)"
	opts := Options{Names: DefaultNames("t-"), Vars: vars, Parsed: cache}
	if _, err := LoadStacks(ctx, All, opts); err != nil {
		t.Fatal(err)
	}
	if n := cache.Parses(); n != len(All) {
		t.Fatalf("%d parses for %d stacks", n, len(All))
	}
	vars["SPIRE_NODE_CA"] = "the Swarm's root CA"
	loaded, err := LoadStacks(ctx, All, opts)
	if err != nil {
		t.Fatal(err)
	}
	if n := cache.Parses(); n != len(All) {
		t.Errorf("the second load made %d parses in all; want %d (SPIRE_NODE_CA is read by a config, not the file)", n, len(All))
	}
	if got := configData(t, loaded[0], "spire_node_ca"); got != "the Swarm's root CA" {
		t.Errorf("spire_node_ca %q after the second load: not converted again", got)
	}
	controller := opts
	controller.Without = []string{"ziti-router", "bootstrap", "bootstrap-docker", "converge", "router-enrol", "backup", "backup-docker"}
	if _, err := Load(ctx, OpenZiti, controller); err != nil {
		t.Fatal(err)
	}
	if n := cache.Parses(); n != len(All) {
		t.Errorf("the controller alone made a parse: %d in all", n)
	}
	vars["SPIRE_DATASTORE_SUFFIX"] = "-1.15"
	loaded, err = LoadStacks(ctx, All, opts)
	if err != nil {
		t.Fatal(err)
	}
	if n := cache.Parses(); n != len(All)+2 {
		t.Errorf("%d parses after SPIRE_DATASTORE_SUFFIX changed; want %d (spire.yml and openziti.yml read it)", n, len(All)+2)
	}
	if env := service(t, loaded[0], "spire-server").TaskTemplate.ContainerSpec.Env; !slices.Contains(env, "SPIRE_DATASTORE_SUFFIX=-1.15") {
		t.Errorf("spire-server's environment %v", env)
	}
}

// What a load gets from the cache is the same as a load without one, and as compose-go's parse of the file with
// every variable (compose-go is given only the variables the file reads); a load that changes its project
// (ExternalKeycloak drops a network) leaves the next load alone.
func TestParseCacheChangesNothingLoaded(t *testing.T) {
	ctx := context.Background()
	cache := NewParseCache()
	vars := fullVars()
	vars["ZB_ENDPOINT_MODE"], vars["ZITI_CTRL_PUBLISHED_PORT"], vars["UNUSED"] = "dnsrr", "21280", "x"
	eachLoad(vars, func(name string, o Options) {
		want, err := Load(ctx, name, o)
		if err != nil {
			t.Fatal(err)
		}
		o.Parsed = cache
		for range 2 {
			got, err := Load(ctx, name, o)
			if err != nil {
				t.Fatal(err)
			}
			if dump(got) != dump(want) {
				t.Errorf("%s (%+v): the cached load differs:\n%s\n%s", name, o.ExternalKeycloak, dump(got), dump(want))
			}
		}
		o.Parsed = nil
		src := &source{file: File(name)}
		if src.content, err = files.ReadFile(src.file); err != nil {
			t.Fatal(err)
		}
		all := maps.Clone(vars)
		maps.Copy(all, o.Names.vars())
		full, err := compose(ctx, o.Names[name], src, all)
		if err != nil {
			t.Fatal(err)
		}
		given, err := (*ParseCache)(nil).project(ctx, o.Names[name], src, all)
		if err != nil {
			t.Fatal(err)
		}
		if dump(full) != dump(given) {
			t.Errorf("%s: parsed with the variables it reads, not as parsed with all", name)
		}
	})
}

// eachLoad calls f with each stack and the options of the loads up makes (the Keycloak stack, external, apart),
// then each stack as loaded first again.
func eachLoad(vars map[string]string, f func(name string, o Options)) {
	for _, o := range []Options{
		{Names: DefaultNames("t-"), Vars: vars},
		{Names: DefaultNames("t-"), Vars: vars, ExternalKeycloak: true},
		{Names: DefaultNames("t-"), Vars: vars, Without: []string{"backup"}},
		{Names: DefaultNames("t-"), Vars: vars},
	} {
		for _, name := range All {
			if name != Keycloak || !o.ExternalKeycloak {
				f(name, o)
			}
		}
	}
}

func TestReadVars(t *testing.T) {
	got := readVars([]byte("a: $$X ${A} $B$C ${D:-${E_1}} $$ {F} $${G} $1 ${H-x}$"))
	if want := []string{"A", "B", "C", "D", "E_1", "H"}; !slices.Equal(got, want) {
		t.Errorf("readVars: %v, want %v", got, want)
	}
}

// LoadStacks loads at once and keeps the order of the names; the problems of every stack come back together.
func TestLoadStacksOrderAndProblems(t *testing.T) {
	ctx := context.Background()
	names := []string{OpenZiti, Spire, Keycloak}
	loaded, err := LoadStacks(ctx, names, Options{Names: DefaultNames("t-"), Vars: fullVars()})
	if err != nil {
		t.Fatal(err)
	}
	for i, st := range loaded {
		if st.Name != names[i] {
			t.Errorf("stack %d is %s, want %s", i, st.Name, names[i])
		}
	}
	_, err = LoadStacks(ctx, names, Options{Names: DefaultNames("t-"), Vars: map[string]string{}})
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("err %v", err)
	}
	for _, name := range names {
		if !strings.Contains(err.Error(), File(name)+":") {
			t.Errorf("no problem of %s in %v", File(name), err)
		}
	}
}

// The names of secrets are those up gave them before (Argon2id, salted with the stack and key): a deployed
// secret keeps its name, so a re-run with this version writes nothing. (Names made by the code of e604f62.)
func TestSecretNamesAreThoseDeployedBefore(t *testing.T) {
	for _, c := range []struct{ ns, key, data, want string }{
		{"zb-spire", "pw", "hunter2", "zb-spire_pw_c82450af"},
		{"dev-openziti", "ziti_admin_password", "S3cr3t-ü", "dev-openziti_ziti_admin_password_2c46202f"},
	} {
		if o, err := newObject(c.ns, c.key, []byte(c.data), nil, true, nil); err != nil || o.Name != c.want {
			t.Errorf("secret %s of %s: name %s (%v), want %s", c.key, c.ns, o.Name, err, c.want)
		}
	}
}

// digests remembers what it is told; found answers lookups.
type digests struct {
	found      map[string]string
	remembered map[string]string
}

func (d *digests) Lookup(salt string, data []byte) (string, bool) {
	h, ok := d.found[salt+"|"+string(data)]
	return h, ok
}
func (d *digests) Remember(salt string, data []byte, h string) {
	d.remembered[salt+"|"+string(data)] = h
}

// A secret's digits come from the digests when they have them (another process computed them), and what is
// computed is remembered; digits that are not 8 hex digits are computed again.
func TestSecretDigestsAcrossProcesses(t *testing.T) {
	salt := "ziti-bootstrap swarm secret name\x00t-spire\x00spire_upstream_ca_key"
	vars := fullVars()
	// a key of this run's own: a digest computed by an earlier run in this process is memoized, and never asked for
	vars["SPIRE_UPSTREAM_CA_KEY"] = "a key only this test uses " + t.Name() + " " + rand.Text()
	d := &digests{found: map[string]string{salt + "|" + vars["SPIRE_UPSTREAM_CA_KEY"]: "0badc0de"}, remembered: map[string]string{}}
	st, err := Load(context.Background(), Spire, Options{Names: DefaultNames("t-"), Vars: vars, Digests: d})
	if err != nil {
		t.Fatal(err)
	}
	if st.Secrets[0].Name != "t-spire_spire_upstream_ca_key_0badc0de" {
		t.Errorf("secret %s: the digests' digits not used", st.Secrets[0].Name)
	}
	vars["SPIRE_UPSTREAM_CA_KEY"] += " (another)"
	d.found[salt+"|"+vars["SPIRE_UPSTREAM_CA_KEY"]] = "not-hex!"
	st, err = Load(context.Background(), Spire, Options{Names: DefaultNames("t-"), Vars: vars, Digests: d})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := newObject("t-spire", "spire_upstream_ca_key", []byte(vars["SPIRE_UPSTREAM_CA_KEY"]), nil, true, nil)
	if st.Secrets[0].Name != want.Name || d.remembered[salt+"|"+vars["SPIRE_UPSTREAM_CA_KEY"]] != strings.TrimPrefix(want.Name, "t-spire_spire_upstream_ca_key_") {
		t.Errorf("secret %s, want %s; remembered %v", st.Secrets[0].Name, want.Name, d.remembered)
	}
}
