package stacks

import (
	"context"
	"reflect"
	"sync"
	"testing"
)

// memModels keeps models in memory, as a directory would across processes, and counts what it is asked.
type memModels struct {
	mu     sync.Mutex
	keys   map[string]string // file → key
	models map[string][]byte // file → model
	hits   int
	keeps  int
}

func newMemModels() *memModels {
	return &memModels{keys: map[string]string{}, models: map[string][]byte{}}
}

func (m *memModels) Model(file, key string) ([]byte, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.keys[file] != key {
		return nil, false
	}
	m.hits++
	return m.models[file], true
}

func (m *memModels) KeepModel(file, key string, model []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.keys[file], m.models[file] = key, model
	m.keeps++
}

// A run keeps each embedded file's model; the next run (another ParseCache, as in another process) loads every
// stack from the kept models, parsing none, and gets the same stacks and compose projects as a load without them.
func TestKeptModelsGiveTheParsedStacks(t *testing.T) {
	ctx := context.Background()
	vars := fullVars()
	vars["ZB_ENDPOINT_MODE"], vars["ZITI_CTRL_PUBLISHED_PORT"] = "dnsrr", "21280"
	m := newMemModels()
	for run := range 2 {
		cache := NewParseCache()
		cache.KeepModels(m)
		eachLoad(vars, func(name string, o Options) {
			want, err := Load(ctx, name, o)
			if err != nil {
				t.Fatal(err)
			}
			wantProject, err := Project(ctx, name, o)
			if err != nil {
				t.Fatal(err)
			}
			o.Parsed = cache
			got, err := Load(ctx, name, o)
			if err != nil {
				t.Fatal(err)
			}
			if dump(got) != dump(want) {
				t.Errorf("run %d, %s: the load from the kept model differs:\n%s\n%s", run, name, dump(got), dump(want))
			}
			gotProject, err := Project(ctx, name, o)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(gotProject, wantProject) {
				t.Errorf("run %d, %s: the project from the kept model differs:\n%s\n%s", run, name, dump(gotProject), dump(wantProject))
			}
		})
		if run == 0 && (m.keeps != len(All) || m.hits != 0) {
			t.Fatalf("first run: %d model(s) kept, %d found; want %d kept, none found", m.keeps, m.hits, len(All))
		}
	}
	if m.keeps != len(All) || m.hits != len(All) {
		t.Errorf("second run: %d model(s) kept in all, %d found; want each of the %d files found once, none kept again", m.keeps, m.hits, len(All))
	}
}

// A variable the file reads changed since the model was kept: a miss, parsed with the new value, whose model is
// kept in place of the old one; a model that no longer loads (a damaged file) is parsed again too.
func TestKeptModelsMissOnAChange(t *testing.T) {
	ctx := context.Background()
	m := newMemModels()
	load := func(image string) *Stack {
		t.Helper()
		vars := fullVars()
		vars["ZB_IMAGE"] = image
		cache := NewParseCache()
		cache.KeepModels(m)
		st, err := Load(ctx, OpenZiti, Options{Names: DefaultNames("t-"), Vars: vars, Parsed: cache})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	load("zb:1")
	if got := service(t, load("zb:2"), "bootstrap").TaskTemplate.ContainerSpec.Image; got != "zb:2" {
		t.Errorf("after ZB_IMAGE changed, the bootstrap's image is %q, want zb:2", got)
	}
	if m.hits != 0 || m.keeps != 2 {
		t.Errorf("%d hit(s), %d model(s) kept; want 0 and 2 (one each value)", m.hits, m.keeps)
	}
	m.models[File(OpenZiti)] = []byte(`{"services": 1}`)
	if got := service(t, load("zb:2"), "bootstrap").TaskTemplate.ContainerSpec.Image; got != "zb:2" {
		t.Errorf("from a damaged model, the bootstrap's image is %q, want zb:2", got)
	}
	if m.keeps != 3 {
		t.Errorf("the damaged model was not replaced (%d kept)", m.keeps)
	}
}

// The key covers the build, the file and its text, the project name and each variable's value, set or not.
func TestModelKey(t *testing.T) {
	src := func(file, text string) *source { return &source{file: file, content: []byte(text), embedded: true} }
	base := modelKey("b1", "ns", src("spire.yml", "x"), map[string]string{"A": "1"})
	if again := modelKey("b1", "ns", src("spire.yml", "x"), map[string]string{"A": "1"}); again != base {
		t.Fatalf("the same input gives another key")
	}
	for what, k := range map[string]string{
		"build":           modelKey("b2", "ns", src("spire.yml", "x"), map[string]string{"A": "1"}),
		"project name":    modelKey("b1", "ns2", src("spire.yml", "x"), map[string]string{"A": "1"}),
		"file":            modelKey("b1", "ns", src("keycloak.yml", "x"), map[string]string{"A": "1"}),
		"text":            modelKey("b1", "ns", src("spire.yml", "y"), map[string]string{"A": "1"}),
		"value":           modelKey("b1", "ns", src("spire.yml", "x"), map[string]string{"A": "2"}),
		"unset":           modelKey("b1", "ns", src("spire.yml", "x"), map[string]string{}),
		"another, empty":  modelKey("b1", "ns", src("spire.yml", "x"), map[string]string{"A": "1", "B": ""}),
		"value into name": modelKey("b1", "ns", src("spire.yml", "x"), map[string]string{"A1": ""}),
	} {
		if k == base {
			t.Errorf("a different %s gives the same key", what)
		}
	}
}

// A file that reads a secret variable is parsed every time: no key or model derived from the secret is kept.
func TestKeptModelsNeverOfASecret(t *testing.T) {
	src := &source{file: File(Spire), content: []byte("services:\n  a:\n    image: x${ZITI_PWD}\n"), embedded: true}
	m := newMemModels()
	for range 2 {
		p, err := composeKept(context.Background(), "t-spire", src, map[string]string{"ZITI_PWD": "pw"}, m)
		if err != nil {
			t.Fatal(err)
		}
		if img := p.Services["a"].Image; img != "xpw" {
			t.Fatalf("image %q", img)
		}
	}
	if m.keeps != 0 || m.hits != 0 {
		t.Errorf("%d model(s) kept, %d found for a file that reads ZITI_PWD", m.keeps, m.hits)
	}
}
