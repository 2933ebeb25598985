package render

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"go.yaml.in/yaml/v3"

	"github.com/ziti-bootstrap/ziti-bootstrap/stacks"
)

// embedded are the files of package stacks a render reads.
var embedded = []string{"spire.yml", "keycloak.yml", "openziti.yml", "config/spire/agent.conf", "config/spire/server.conf",
	"config/openziti/router-entrypoint.bash", "config/openziti/controller-entrypoint.bash"}

func vars() map[string]string {
	return map[string]string{
		"SPIRE_UPSTREAM_CA_CERT": "upstream cert", "SPIRE_UPSTREAM_CA_KEY": "upstream key", "SPIRE_NODE_CA": "node ca",
		"KEYCLOAK_DB_PASSWORD": "db pw", "KEYCLOAK_ADMIN_PASSWORD": "admin pw", "ZITI_PWD": "ziti pw", "KEYCLOAK_ADMIN_CLIENT_SECRET": "admin client pw",
		"KEYCLOAK_PUBLISHED_PORT": "18080",
		"KEYCLOAK_CA":             "keycloak ca", "KEYCLOAK_TLS_CERT": "keycloak cert", "KEYCLOAK_TLS_KEY": "keycloak key",
	}
}

func options(fsys fstest.MapFS) Options {
	o := Options{Stacks: stacks.Options{Names: stacks.DefaultNames("t-"), Vars: vars(), Without: []string{"backup"}},
		Project: "proj", Node: &NodeIdentity{Cert: []byte("node cert"), Key: []byte("node key")}}
	if fsys != nil {
		o.Stacks.FS = fsys
	}
	return o
}

// renderAll renders both forms and the README, as `render` does.
func renderAll(t *testing.T, o Options) []File {
	t.Helper()
	ctx := context.Background()
	s, err := Stacks(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Compose(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	return append(append(s, c...), Readme(o, true, true))
}

func embeddedFS(t *testing.T) fstest.MapFS {
	t.Helper()
	m := fstest.MapFS{}
	for _, p := range embedded {
		b, err := stacks.Read(p)
		if err != nil {
			t.Fatal(err)
		}
		m[p] = &fstest.MapFile{Data: b}
	}
	return m
}

func byPath(files []File) map[string]File {
	out := map[string]File{}
	for _, f := range files {
		out[f.Path] = f
	}
	return out
}

func TestRenderIsDeterministic(t *testing.T) {
	a, b := renderAll(t, options(nil)), renderAll(t, options(nil))
	if len(a) != len(b) {
		t.Fatalf("%d files, then %d", len(a), len(b))
	}
	for i := range a {
		if a[i].Path != b[i].Path || !bytes.Equal(a[i].Data, b[i].Data) || a[i].Mode != b[i].Mode {
			t.Errorf("%s differs between two renders of the same input", a[i].Path)
		}
	}
	// and on disk: two directories, byte for byte
	d1, d2 := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	if err := Write(d1, a); err != nil {
		t.Fatal(err)
	}
	if err := Write(d2, b); err != nil {
		t.Fatal(err)
	}
	if x, y := tree(t, d1), tree(t, d2); x != y {
		t.Errorf("two renders differ on disk:\n%s\n---\n%s", x, y)
	}
}

// tree lists every file of dir with its mode and content.
func tree(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		b.WriteString(rel + " " + fi.Mode().String() + "\n" + string(data) + "\n")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// A change to an embedded definition shows in the rendered files: they are made from the parsed stacks, not
// kept beside them.
func TestRenderFollowsTheEmbeddedStacks(t *testing.T) {
	before := byPath(renderAll(t, options(embeddedFS(t))))
	fsys := embeddedFS(t)
	old := fsys["spire.yml"].Data
	changed := bytes.Replace(old, []byte("      interval: 2s\n      timeout: 5s\n      retries: 15\n      start_period: 30s\n"),
		[]byte("      interval: 17s\n      timeout: 5s\n      retries: 15\n      start_period: 30s\n"), 1)
	if bytes.Equal(changed, old) {
		t.Fatal("the test's edit of spire.yml matched nothing: update the test")
	}
	fsys["spire.yml"] = &fstest.MapFile{Data: changed}
	fsys["config/spire/server.conf"] = &fstest.MapFile{Data: append(fsys["config/spire/server.conf"].Data, "# edited\n"...)}
	after := byPath(renderAll(t, options(fsys)))
	for _, p := range []string{"stack/spire.yml", "compose/compose.yml"} {
		if bytes.Equal(before[p].Data, after[p].Data) || !bytes.Contains(after[p].Data, []byte("interval: 17s")) {
			t.Errorf("%s does not follow the edited health check of spire.yml", p)
		}
	}
	if f := after["compose/configs/spire_server_conf"]; !bytes.HasSuffix(f.Data, []byte("# edited\n")) {
		t.Errorf("the compose project's server.conf does not follow the edited file: %q", f.Data)
	}
	// the stack's config is a new object: its name carries a hash of the data
	var oldName, newName string
	for p := range before {
		if strings.HasPrefix(p, "stack/configs/t-spire_spire_server_conf_") {
			oldName = p
		}
	}
	for p := range after {
		if strings.HasPrefix(p, "stack/configs/t-spire_spire_server_conf_") {
			newName = p
		}
	}
	if oldName == "" || oldName == newName {
		t.Errorf("server.conf's config: %q before, %q after; want a new name", oldName, newName)
	}
}

func TestStackFilesNameObjectsAsUpDoes(t *testing.T) {
	o := options(nil)
	files := byPath(renderAll(t, o))
	for _, name := range stacks.All {
		st, err := stacks.Load(context.Background(), name, o.Stacks)
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		f := files["stack/"+st.File]
		if err := yaml.Unmarshal(f.Data, &doc); err != nil {
			t.Fatal(err)
		}
		for kind, objs := range map[string][]stacks.Object{"secrets": st.Secrets, "configs": st.Configs} {
			for _, obj := range objs {
				def := mapOf(mapOf(doc[kind])[obj.Key])
				if def["name"] != obj.Name || def["file"] != "./"+kind+"/"+obj.Name {
					t.Errorf("%s: %s %s: %v, want name %s", st.File, kind, obj.Key, def, obj.Name)
				}
				if g := files["stack/"+kind+"/"+obj.Name]; !bytes.Equal(g.Data, obj.Data) {
					t.Errorf("%s: the file of %s %s does not hold its data", st.File, kind, obj.Key)
				}
				if kind == "secrets" && files["stack/"+kind+"/"+obj.Name].Mode != 0o600 {
					t.Errorf("secret file %s: mode %v", obj.Name, files["stack/"+kind+"/"+obj.Name].Mode)
				}
			}
		}
	}
	// a secret mounted where it is by default names no target: the Docker CLI then names the file as up does
	// (a target /run/secrets/NAME would be a different spec, which up would update)
	if oz := string(files["stack/openziti.yml"].Data); strings.Contains(oz, "target: /run/secrets/") {
		t.Errorf("openziti.yml: a secret's default target is written out:\n%s", oz)
	}
	// nor the alias the CLI adds itself (the service's key): it would be there twice, unlike up's spec
	if oz := string(files["stack/openziti.yml"].Data); strings.Contains(oz, "- router-enrol\n") {
		t.Errorf("openziti.yml: router-enrol's alias equal to its key is written out:\n%s", oz)
	}
	// a literal $ of the definitions is $$ for the CLI's interpolation
	if kc := string(files["stack/keycloak.yml"].Data); !strings.Contains(kc, `KC_DB_PASSWORD="$$(< /run/secrets/keycloak_db_password)"`) {
		t.Errorf("keycloak.yml: the entrypoint's $ is not escaped:\n%s", kc)
	}
}

func TestComposeProject(t *testing.T) {
	files := byPath(renderAll(t, options(nil)))
	var doc struct {
		Services map[string]map[string]any
		Volumes  map[string]any
	}
	if err := yaml.Unmarshal(files["compose/compose.yml"].Data, &doc); err != nil {
		t.Fatal(err)
	}
	for name, s := range doc.Services {
		if _, ok := s["deploy"]; ok {
			t.Errorf("service %s keeps Swarm's deploy", name)
		}
		if name != ToolsService && name != BootstrapService && s["healthcheck"] == nil {
			t.Errorf("service %s has no health check", name)
		}
	}
	if _, ok := doc.Services["backup"]; ok {
		t.Error("the Swarm-only backup service is in the compose project")
	}
	agent := doc.Services[AgentService]
	if agent["pid"] != "host" {
		t.Errorf("spire-agent: pid %v, want host (it attests workloads by PID)", agent["pid"])
	}
	// its Engine is the proxy spire-agent-docker (policy spire-agent), in a volume they share; never the socket
	for _, v := range listOf(agent["volumes"]) {
		if src, _ := mapOf(v)["source"].(string); strings.HasSuffix(src, "docker.sock") {
			t.Errorf("spire-agent mounts the Engine's socket: %v", v)
		}
	}
	if !slices.ContainsFunc(listOf(agent["volumes"]), func(v any) bool {
		m := mapOf(v)
		return m["source"] == AgentDockerVolume && m["target"] == "/run/zb-docker" && m["read_only"] == true
	}) {
		t.Errorf("spire-agent volumes %v: no read-only %s at /run/zb-docker", agent["volumes"], AgentDockerVolume)
	}
	if dep := mapOf(mapOf(agent["depends_on"])[AgentDockerService]); dep["condition"] != "service_healthy" {
		t.Errorf("spire-agent depends_on: %v", agent["depends_on"])
	}
	proxy := doc.Services[AgentDockerService]
	if cmd := fmt.Sprint(proxy["command"]); cmd != "[socket-proxy --policy spire-agent --listen /run/zb-docker/docker.sock]" {
		t.Errorf("%s command %s", AgentDockerService, cmd)
	}
	if _, ok := doc.Volumes[AgentDockerVolume]; !ok {
		t.Errorf("no volume %s: %v", AgentDockerVolume, doc.Volumes)
	}
	boot := doc.Services[BootstrapService]
	env := mapOf(boot["environment"])
	if env["ZB_COMPOSE_PROJECT"] != "proj" || env["ZB_DOCKER"] != "false" {
		t.Errorf("bootstrap environment: %v", env)
	}
	if dep := mapOf(mapOf(boot["depends_on"])["ziti-controller"]); dep["condition"] != "service_healthy" {
		t.Errorf("bootstrap depends_on: %v", boot["depends_on"])
	}
	// the stacks' order: keycloak waits for SPIRE, the OpenZiti services for Keycloak
	if dep := mapOf(mapOf(doc.Services["keycloak"]["depends_on"])["spire-server"]); dep["condition"] != "service_healthy" {
		t.Errorf("keycloak depends_on: %v", doc.Services["keycloak"]["depends_on"])
	}
	if dep := mapOf(mapOf(doc.Services["ziti-controller"]["depends_on"])["keycloak"]); dep["condition"] != "service_healthy" {
		t.Errorf("ziti-controller depends_on: %v", doc.Services["ziti-controller"]["depends_on"])
	}
	if f := files["compose/configs/ziti_router_entrypoint"]; f.Mode != 0o555 || bytes.Contains(f.Data, []byte("$$")) {
		t.Errorf("router entrypoint: mode %v, escapes left: %v", f.Mode, bytes.Contains(f.Data, []byte("$$")))
	}
	if p := doc.Services["keycloak"]["ports"]; len(listOf(p)) != 1 || listOf(p)[0] != "127.0.0.1:18080:8080/tcp" {
		t.Errorf("keycloak ports %v", p)
	}
}

func TestComposeNeedsTheNodeIdentity(t *testing.T) {
	o := options(nil)
	o.Node = nil
	var inv *InvalidError
	if _, err := Compose(context.Background(), o); !errors.As(err, &inv) {
		t.Fatalf("err %v, want an InvalidError", err)
	}
}

func TestWriteReplacesOnlyARender(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "mine.txt"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := Write(dir, []File{{Path: "README.md", Data: []byte("r"), Mode: 0o644}})
	if _, ok := err.(*InvalidError); !ok {
		t.Fatalf("Write into a directory of other files: %v, want an InvalidError", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "mine.txt")); err != nil {
		t.Errorf("the directory was touched: %v", err)
	}
	out := filepath.Join(t.TempDir(), "out")
	for _, data := range []string{"one", "two"} {
		if err := Write(out, []File{{Path: "stack/a", Data: []byte(data), Mode: 0o600}}); err != nil {
			t.Fatal(err)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(out, "stack/a")); string(b) != "two" {
		t.Errorf("second render: %q", b)
	}
	if fi, _ := os.Stat(out); fi.Mode().Perm() != 0o700 {
		t.Errorf("output directory mode %v, want 0700", fi.Mode().Perm())
	}
}
