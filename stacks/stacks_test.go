package stacks

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/swarm"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/agentlauncher"
)

// fullVars are the variables every stack needs (the data of secrets and configs).
func fullVars() map[string]string {
	return map[string]string{
		"SPIRE_UPSTREAM_CA_CERT": "upstream cert", "SPIRE_UPSTREAM_CA_KEY": "upstream key",
		"SPIRE_NODE_CA":        "swarm root ca",
		"KEYCLOAK_DB_PASSWORD": "db", "KEYCLOAK_ADMIN_PASSWORD": "admin", "ZITI_PWD": "ziti", "KEYCLOAK_ADMIN_CLIENT_SECRET": "admin client",
		"S3_SECRET_ACCESS_KEY": "s3", "BACKUP_ENCRYPTION_KEY": "key", "BACKUP_SCHEDULE": "@daily",
		"KEYCLOAK_CA": "keycloak ca", "KEYCLOAK_TLS_CERT": "keycloak cert", "KEYCLOAK_TLS_KEY": "keycloak key",
	}
}

func load(t *testing.T, name string, vars map[string]string, without ...string) *Stack {
	t.Helper()
	st, err := Load(context.Background(), name, Options{Names: DefaultNames("t-"), Vars: vars, Without: without})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func service(t *testing.T, st *Stack, key string) swarm.ServiceSpec {
	t.Helper()
	for _, s := range st.Services {
		if s.Key == key {
			return s.Spec
		}
	}
	t.Fatalf("stack %s has no service %s", st.Namespace, key)
	return swarm.ServiceSpec{}
}

func TestEveryObjectIsLabelledWithItsStack(t *testing.T) {
	for _, name := range All {
		st := load(t, name, fullVars())
		ns := "t-" + name
		if st.Namespace != ns {
			t.Errorf("%s: namespace %q", name, st.Namespace)
		}
		for _, s := range st.Services {
			if s.Spec.Labels[LabelNamespace] != ns || s.Spec.TaskTemplate.ContainerSpec.Labels[LabelNamespace] != ns {
				t.Errorf("%s: service %s lacks the namespace label", name, s.Key)
			}
			if s.Spec.Labels[LabelImage] != s.Spec.TaskTemplate.ContainerSpec.Image || s.Spec.Labels[LabelImage] == "" {
				t.Errorf("%s: service %s: image label %q, image %q", name, s.Key, s.Spec.Labels[LabelImage], s.Spec.TaskTemplate.ContainerSpec.Image)
			}
			if !strings.HasPrefix(s.Spec.Name, ns+"_") {
				t.Errorf("%s: service name %s", name, s.Spec.Name)
			}
			if s.Spec.TaskTemplate.RestartPolicy == nil {
				t.Errorf("%s: service %s has no restart policy", name, s.Key)
			}
			if r := s.Spec.TaskTemplate.Resources; r == nil || r.Limits == nil || r.Limits.MemoryBytes == 0 {
				t.Errorf("%s: service %s has no memory limit", name, s.Key)
			}
			if !s.Job() && !s.Healthcheck {
				t.Errorf("%s: service %s has no health check", name, s.Key)
			}
		}
		for _, o := range append(append([]Object{}, st.Secrets...), st.Configs...) {
			if o.Labels[LabelNamespace] != ns || o.Labels[LabelKey] != o.Key || !strings.HasPrefix(o.Name, ns+"_"+o.Key+"_") {
				t.Errorf("%s: object %s: labels %v", name, o.Name, o.Labels)
			}
		}
		for _, n := range st.Networks {
			if !n.External && (n.Labels[LabelNamespace] != ns || n.Name != ns+"_"+n.Key || n.Driver != "overlay") {
				t.Errorf("%s: network %+v", name, n)
			}
		}
	}
}

func TestConversion(t *testing.T) {
	vars := fullVars()
	spire := load(t, Spire, vars)
	kc := load(t, Keycloak, vars)
	oz := load(t, OpenZiti, vars)
	one := uint64(1)
	five := uint64(5)
	tests := []struct {
		name string
		got  any
		want any
	}{
		{"upstream image default", service(t, spire, "spire-server").TaskTemplate.ContainerSpec.Image, "ghcr.io/spiffe/spire-server:1.15.3"},
		{"agent image default", envOf(service(t, spire, "spire-agent-launcher"))["ZB_AGENT_IMAGE"], "ghcr.io/spiffe/spire-agent:1.15.3"},
		{"launcher image default", service(t, spire, "spire-agent-launcher").TaskTemplate.ContainerSpec.Image, "ghcr.io/ziti-bootstrap/ziti-bootstrap:0.1.0"},
		{"keycloak image default", service(t, kc, "keycloak").TaskTemplate.ContainerSpec.Image, "quay.io/keycloak/keycloak:26.4.7"},
		{"postgres image default", service(t, kc, "keycloak-db").TaskTemplate.ContainerSpec.Image, "docker.io/library/postgres:15"},
		{"controller image default", service(t, oz, "ziti-controller").TaskTemplate.ContainerSpec.Image, "docker.io/openziti/ziti-controller:1.7.2"},
		{"router image default", service(t, oz, "ziti-router").TaskTemplate.ContainerSpec.Image, "docker.io/openziti/ziti-router:1.7.2"},
		{"server replicas", service(t, spire, "spire-server").Mode, swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &one}}},
		{"launcher global", service(t, spire, "spire-agent-launcher").Mode, swarm.ServiceMode{Global: &swarm.GlobalService{}}},
		{"agent joins the attachable spire network", envOf(service(t, spire, "spire-agent-launcher"))["ZB_AGENT_NETWORK"], "t-spire_spire"},
		{"agent binds the node's swarm certificates (and not the docker socket)", envOf(service(t, spire, "spire-agent-launcher"))["ZB_AGENT_BINDS"],
			"/var/lib/docker/swarm/certificates:/var/lib/docker/swarm/certificates"},
		{"bootstrap is a job", service(t, oz, "bootstrap").Mode, swarm.ServiceMode{ReplicatedJob: &swarm.ReplicatedJob{MaxConcurrent: &one, TotalCompletions: &one}}},
		{"bootstrap restarts on failure, 5 times", service(t, oz, "bootstrap").TaskTemplate.RestartPolicy,
			&swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionOnFailure, Delay: ptr(15 * time.Second), MaxAttempts: &five}},
		{"server placement", service(t, spire, "spire-server").TaskTemplate.Placement.Constraints, []string{"node.labels.ziti-bootstrap.state == true"}},
		{"server cpu limit", service(t, spire, "spire-server").TaskTemplate.Resources.Limits.NanoCPUs, int64(1e9)},
		{"launcher memory limit", service(t, spire, "spire-agent-launcher").TaskTemplate.Resources.Limits.MemoryBytes, int64(128 << 20)},
		{"server data volume", service(t, spire, "spire-server").TaskTemplate.ContainerSpec.Mounts[0], mount.Mount{Type: mount.TypeVolume,
			Source: "t-spire_spire-server-data", Target: "/var/lib/spire/server", VolumeOptions: &mount.VolumeOptions{Labels: map[string]string{LabelNamespace: "t-spire"}}}},
		{"launcher's proxy holds the docker socket", service(t, spire, "spire-agent-launcher-docker").TaskTemplate.ContainerSpec.Mounts[0], mount.Mount{Type: mount.TypeBind,
			Source: "/var/run/docker.sock", Target: "/var/run/docker.sock"}},
		{"router has no admin password", len(service(t, oz, "ziti-router").TaskTemplate.ContainerSpec.Secrets), 0},
		{"router mounts the agent socket of the spire stack", service(t, oz, "ziti-router").TaskTemplate.ContainerSpec.Mounts[1], mount.Mount{Type: mount.TypeVolume,
			Source: "t-spire_spire-agent-socket", Target: "/run/spire/agent/public", ReadOnly: true, VolumeOptions: &mount.VolumeOptions{}}},
		{"server key secret", *service(t, spire, "spire-server").TaskTemplate.ContainerSpec.Secrets[0].File,
			swarm.SecretReferenceFileTarget{Name: "spire_upstream_ca_key", UID: "1000", GID: "1000", Mode: 0o400}},
		{"server config", *service(t, spire, "spire-server").TaskTemplate.ContainerSpec.Configs[1].File,
			swarm.ConfigReferenceFileTarget{Name: "/etc/spire/server/server.conf", UID: "0", GID: "0", Mode: 0o444}},
		{"network alias", service(t, spire, "spire-server").TaskTemplate.Networks, []swarm.NetworkAttachmentConfig{{Target: "t-spire_spire", Aliases: []string{"spire-server"}}}},
		{"bootstrap joins keycloak's network", service(t, oz, "bootstrap").TaskTemplate.Networks[0].Target, "t-keycloak_keycloak"},
		{"controller alias", service(t, oz, "ziti-controller").TaskTemplate.Networks[0].Aliases, []string{"ziti-controller"}},
		{"published port", service(t, kc, "keycloak").EndpointSpec, &swarm.EndpointSpec{Mode: swarm.ResolutionModeVIP, Ports: []swarm.PortConfig{{
			Protocol: "tcp", TargetPort: 8080, PublishedPort: 8080, PublishMode: swarm.PortConfigPublishModeIngress}}}},
		{"healthcheck", service(t, spire, "spire-agent-launcher").TaskTemplate.ContainerSpec.Healthcheck.Test,
			[]string{"CMD", "ziti-bootstrap", "agent-launcher", "healthcheck"}},
		{"env sorted", service(t, kc, "keycloak-db").TaskTemplate.ContainerSpec.Env,
			[]string{"POSTGRES_DB=keycloak", "POSTGRES_PASSWORD_FILE=/run/secrets/keycloak_db_password", "POSTGRES_USER=keycloak"}},
		{"escaped $ in entrypoint", strings.Contains(service(t, kc, "keycloak").TaskTemplate.ContainerSpec.Command[2], `"$(< /run/secrets/keycloak_db_password)"`), true},
	}
	for _, tt := range tests {
		if !equal(tt.got, tt.want) {
			t.Errorf("%s:\n got  %#v\n want %#v", tt.name, tt.got, tt.want)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// The SPIRE agent reaches Docker only through its launcher's proxy: the launcher serves it in the volume it gives
// the agent (the same volume, mounted where the launcher is told), and agent.conf's docker attestor names the
// proxy's socket as the agent sees it.
func TestSpireAgentDockerIsTheLaunchersProxy(t *testing.T) {
	launcher := service(t, load(t, Spire, fullVars()), "spire-agent-launcher")
	env := envOf(launcher)
	var mounted bool
	for _, m := range launcher.TaskTemplate.ContainerSpec.Mounts {
		mounted = mounted || m.Type == mount.TypeVolume && m.Source == env[agentlauncher.EnvProxyVolume] && m.Target == env[agentlauncher.EnvProxyDir]
	}
	if env[agentlauncher.EnvProxyVolume] != "t-spire_spire-agent-docker" || !mounted {
		t.Errorf("launcher: %s=%q, %s=%q, mounts %+v: want its volume spire-agent-docker mounted there", agentlauncher.EnvProxyVolume,
			env[agentlauncher.EnvProxyVolume], agentlauncher.EnvProxyDir, env[agentlauncher.EnvProxyDir], launcher.TaskTemplate.ContainerSpec.Mounts)
	}
	if b := env[agentlauncher.EnvBinds]; strings.Contains(b, "docker.sock") {
		t.Errorf("%s gives the agent the Engine's socket: %s", agentlauncher.EnvBinds, b)
	}
	var conf string
	for _, c := range load(t, Spire, fullVars()).Configs {
		if c.Key == "spire_agent_conf" {
			conf = string(c.Data)
		}
	}
	if want := `docker_socket_path = "unix://` + agentlauncher.DockerSocket + `"`; !strings.Contains(conf, want) || strings.Count(conf, "docker_socket_path") != 1 {
		t.Errorf("agent.conf lacks %s:\n%s", want, conf)
	}
}

// The launcher reaches the Engine only through its proxy spire-agent-launcher-docker (policy agent-launcher), on
// the same node (both global), in a volume they share; the proxy is given the same agent container as the
// launcher (the same variables), so it allows what the launcher creates.
func TestSpireAgentLauncherDockerIsItsProxy(t *testing.T) {
	st := load(t, Spire, fullVars())
	launcher, proxy := service(t, st, "spire-agent-launcher"), service(t, st, "spire-agent-launcher-docker")
	for _, m := range launcher.TaskTemplate.ContainerSpec.Mounts {
		if m.Type == mount.TypeBind {
			t.Errorf("the launcher binds %s at %s: it has the Engine only through its proxy", m.Source, m.Target)
		}
	}
	le, pe := envOf(launcher), envOf(proxy)
	if le["DOCKER_HOST"] != "unix:///run/zb-docker/docker.sock" || pe["DOCKER_HOST"] != "unix:///var/run/docker.sock" {
		t.Errorf("DOCKER_HOST: launcher %q, proxy %q", le["DOCKER_HOST"], pe["DOCKER_HOST"])
	}
	want := []string{"socket-proxy", "--policy", "agent-launcher", "--listen", "/run/zb-docker/docker.sock"}
	if got := proxy.TaskTemplate.ContainerSpec.Args; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("proxy command %q, want %q", got, want)
	}
	shared := func(s swarm.ServiceSpec) string {
		for _, m := range s.TaskTemplate.ContainerSpec.Mounts {
			if m.Type == mount.TypeVolume && m.Target == "/run/zb-docker" {
				return m.Source
			}
		}
		return ""
	}
	if shared(launcher) != "t-spire_spire-agent-launcher-docker" || shared(proxy) != shared(launcher) {
		t.Errorf("volume at /run/zb-docker: launcher %q, proxy %q; want both t-spire_spire-agent-launcher-docker", shared(launcher), shared(proxy))
	}
	// no network of another service's: the stack's default, which only these two join (compose adds it)
	if nets := proxy.TaskTemplate.Networks; proxy.Mode.Global == nil || len(nets) != 1 || nets[0].Target != "t-spire_default" ||
		proxy.EndpointSpec != nil && len(proxy.EndpointSpec.Ports) != 0 {
		t.Errorf("proxy: mode %+v, networks %v, endpoint %+v; want global, the stack's default network only, no port", proxy.Mode, proxy.TaskTemplate.Networks, proxy.EndpointSpec)
	}
	ls, err := agentlauncher.AgentFromEnv(func(k string) (string, bool) { v, ok := le[k]; return v, ok })
	if err != nil {
		t.Fatalf("launcher: %v", err)
	}
	ps, err := agentlauncher.AgentFromEnv(func(k string) (string, bool) { v, ok := pe[k]; return v, ok })
	if err != nil {
		t.Fatalf("proxy: %v", err)
	}
	if a, b := dump(agentlauncher.Desire(ls, "", nil).Spec), dump(agentlauncher.Desire(ps, "", nil).Spec); a != b {
		t.Errorf("the agent container: the launcher's settings make\n%s\nits proxy's\n%s", a, b)
	}
}

// envOf is a service's environment as a map.
func envOf(s swarm.ServiceSpec) map[string]string {
	m := map[string]string{}
	for _, kv := range s.TaskTemplate.ContainerSpec.Env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

func equal(a, b any) bool { return strings.TrimSpace(dump(a)) == strings.TrimSpace(dump(b)) }

func TestVariables(t *testing.T) {
	vars := fullVars()
	vars["SPIRE_SERVER_IMAGE"] = "local/spire-server:dev"
	vars["TRUST_DOMAIN"] = "example.org"
	vars["ZB_ENDPOINT_MODE"] = "dnsrr"
	st := load(t, Spire, vars)
	if got := service(t, st, "spire-server").TaskTemplate.ContainerSpec.Image; got != "local/spire-server:dev" {
		t.Errorf("image override: %s", got)
	}
	if got := service(t, st, "spire-server").EndpointSpec.Mode; got != swarm.ResolutionModeDNSRR {
		t.Errorf("endpoint mode: %s", got)
	}
	var conf string
	for _, c := range st.Configs {
		if c.Key == "spire_server_conf" {
			conf = string(c.Data)
		}
	}
	for _, want := range []string{`trust_domain = "example.org"`, "of the stack t-spire.", `log_level = "INFO"`} {
		if !strings.Contains(conf, want) {
			t.Errorf("server.conf lacks %q:\n%s", want, conf)
		}
	}
	// object names follow their data
	a := load(t, Spire, vars)
	vars["SPIRE_UPSTREAM_CA_KEY"] = "another key"
	b := load(t, Spire, vars)
	names := func(st *Stack) map[string]string {
		m := map[string]string{}
		for _, o := range st.Secrets {
			m[o.Key] = o.Name
		}
		return m
	}
	if names(a)["spire_upstream_ca_key"] == names(b)["spire_upstream_ca_key"] {
		t.Errorf("secret names: %v then %v", names(a), names(b))
	}
	if names(st)["spire_upstream_ca_key"] != names(a)["spire_upstream_ca_key"] {
		t.Error("same data, different secret name")
	}
	// a stack's view of the others follows their names
	oz, err := Load(context.Background(), OpenZiti, Options{Names: Names{Spire: "s1", Keycloak: "k1", OpenZiti: "o1"}, Vars: fullVars()})
	if err != nil {
		t.Fatal(err)
	}
	if got := service(t, oz, "bootstrap").TaskTemplate.ContainerSpec.Mounts[0].Source; got != "s1_spire-server-socket" {
		t.Errorf("cross-stack volume: %s", got)
	}
	// services left out take their now unused objects with them
	oz = load(t, OpenZiti, fullVars(), "bootstrap", "converge")
	for _, s := range oz.Secrets {
		if s.Key == "spire_upstream_ca_key" || s.Key == "keycloak_admin_password" {
			t.Errorf("secret %s kept without its only user", s.Key)
		}
	}
	// the controller still joins Keycloak's network: it fetches the signing keys of OIDC logins there
	kept := false
	for _, n := range oz.Networks {
		kept = kept || (n.Key == "keycloak" && n.External)
	}
	if !kept || len(service(t, oz, "ziti-controller").TaskTemplate.Networks) != 2 {
		t.Errorf("without the bootstrap service: keycloak network kept %v, controller networks %v", kept,
			service(t, oz, "ziti-controller").TaskTemplate.Networks)
	}
}

func TestVariablesList(t *testing.T) {
	vs, err := Variables()
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(vs, " ")
	for _, want := range []string{"SPIRE_SERVER_IMAGE", "KEYCLOAK_IMAGE", "POSTGRES_IMAGE", "ZITI_CONTROLLER_IMAGE", "TRUST_DOMAIN",
		"SPIRE_UPSTREAM_CA_KEY", "SPIRE_NODE_CA", "KEYCLOAK_DB_PASSWORD", "ZITI_PWD", "ZB_STACK_SPIRE"} {
		if !strings.Contains(" "+got+" ", " "+want+" ") {
			t.Errorf("Variables() lacks %s: %s", want, got)
		}
	}
	for _, not := range []string{"ZITI_HOME", "ZITI_ENROLL_TOKEN", "i"} { // $$-escaped shell variables
		if strings.Contains(" "+got+" ", " "+not+" ") {
			t.Errorf("Variables() lists the shell variable %s", not)
		}
	}
	if got := strings.Join(SecretVariables(), " "); got != "BACKUP_ENCRYPTION_KEY KEYCLOAK_ADMIN_CLIENT_SECRET KEYCLOAK_ADMIN_PASSWORD KEYCLOAK_DB_PASSWORD KEYCLOAK_TLS_KEY S3_SECRET_ACCESS_KEY SPIRE_UPSTREAM_CA_KEY ZITI_PWD" {
		t.Errorf("SecretVariables() = %s", got)
	}
}

func TestEnvSourceLines(t *testing.T) {
	for line, want := range map[string]string{
		"    environment: ZITI_PWD\n":    "ZITI_PWD",
		"\tenvironment:\tS3_KEY_2 ":      "S3_KEY_2",
		"environment: ZITI_PWD":          "", // not indented: a top-level key
		"    environment: ziti_pwd":      "", // not a variable of ours
		"    environment: 2FA":           "",
		"    environment:ZITI_PWD":       "",
		"    environment:":               "",
		"    environment: A B":           "",
		"    environment_file: ZITI_PWD": "",
	} {
		got, ok := envSource(line)
		if got != want || ok != (want != "") {
			t.Errorf("envSource(%q) = %q, %v; want %q", line, got, ok, want)
		}
	}
}

// TestBadInput: every problem is reported before any write, naming file, line and key.
func TestBadInput(t *testing.T) {
	const ok = `services:
  app:
    image: busybox
    secrets: [pw]
secrets:
  pw:
    environment: PW
`
	tests := []struct {
		name, yml string
		vars      map[string]string
		want      []string
	}{
		{"unknown key", "services:\n  app:\n    image: busybox\n    imagee: x\n", nil,
			[]string{"spire.yml:4: services.app.imagee: unknown key imagee"}},
		{"unknown deploy key", "services:\n  app:\n    image: busybox\n    deploy:\n      replica: 2\n", nil,
			[]string{"spire.yml:5: services.app.deploy.replica: unknown key replica"}},
		{"bad interpolation", "services:\n  app:\n    image: ${IMG\n", nil,
			[]string{"spire.yml:3: services.app.image: bad interpolation", "${IMG"}},
		{"required variable", "services:\n  app:\n    image: ${IMG:?give the image}\n", nil,
			[]string{"spire.yml:3: services.app.image: interpolation: required variable IMG is missing a value: give the image"}},
		{"missing image", "services:\n  app:\n    command: [x]\n  other:\n    image: busybox\n", nil,
			[]string{"spire.yml:2: services.app: no image"}},
		{"secret variable unset", ok, nil,
			[]string{"spire.yml:7: secrets.pw.environment: variable PW is not set"}},
		{"depends_on", "services:\n  app:\n    image: a\n    depends_on: [b]\n  b:\n    image: b\n", nil,
			[]string{"spire.yml:4: services.app.depends_on: Swarm has no start order"}},
		{"relative bind", "services:\n  app:\n    image: a\n    volumes:\n      - ./x:/x\n", nil,
			[]string{"spire.yml:5: services.app.volumes.0: bind source"}},
		{"undeclared volume", "services:\n  app:\n    image: a\n    volumes:\n      - data:/x\n", nil,
			[]string{"services.app.volumes.0", "data"}},
		{"config file interpolation", "services:\n  app:\n    image: a\n    configs: [c]\nconfigs:\n  c:\n    file: ./c.conf\n", nil,
			[]string{"spire.yml:7: configs.c.file: c.conf:2: ", "required variable X"}},
		{"bad yaml", "services:\n  app:\n    image: [a\n", nil, []string{"spire.yml"}},
		{"all problems at once", "services:\n  a:\n    command: [x]\n  b:\n    command: [y]\n", nil,
			[]string{"spire.yml:2: services.a: no image", "spire.yml:4: services.b: no image"}},
		{"fine", ok, map[string]string{"PW": "x"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := fstest.MapFS{"spire.yml": {Data: []byte(tt.yml)}, "c.conf": {Data: []byte("a = 1\nb = ${X:?}\n")}}
			_, err := Load(context.Background(), Spire, Options{FS: fsys, Vars: tt.vars})
			if tt.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			if !IsInvalid(err) {
				t.Errorf("error is not an *Error: %T %v", err, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestNanoCPUs(t *testing.T) {
	for in, want := range map[float32]int64{0: 0, 0.1: 1e8, 0.5: 5e8, 1: 1e9, 1.25: 125e7, 2: 2e9} {
		got, err := nanoCPUs(ptrNano(in))
		if err != nil || got != want {
			t.Errorf("nanoCPUs(%v) = %d, %v; want %d", in, got, err, want)
		}
	}
}

func TestStackFilesAreReadable(t *testing.T) {
	for _, name := range All {
		b, err := Read(File(name))
		if err != nil || len(b) == 0 {
			t.Fatalf("%s: %v", name, err)
		}
		disk, err := os.ReadFile(File(name))
		if err != nil || string(disk) != string(b) {
			t.Errorf("%s: embedded copy differs from the file", name)
		}
	}
}

// With an external Keycloak no service joins the keycloak stack's network (it does not exist), and the
// bootstrap job is kept: it reaches Keycloak at KEYCLOAK_INTERNAL_URL.
func TestExternalKeycloakDropsItsNetwork(t *testing.T) {
	vars := fullVars()
	vars["KEYCLOAK_INTERNAL_URL"] = "https://sso.example.org"
	st, err := Load(context.Background(), OpenZiti, Options{Names: DefaultNames("t-"), Vars: vars, ExternalKeycloak: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range st.Networks {
		if strings.HasSuffix(n.Name, "_keycloak") {
			t.Errorf("network %s is still declared", n.Name)
		}
	}
	for _, s := range st.Services {
		for _, n := range s.Spec.TaskTemplate.Networks {
			if strings.Contains(n.Target, "keycloak") {
				t.Errorf("service %s still joins %s", s.Key, n.Target)
			}
		}
	}
	boot := service(t, st, "bootstrap")
	if !strings.Contains(strings.Join(boot.TaskTemplate.ContainerSpec.Env, " "), "KEYCLOAK_URL=https://sso.example.org") {
		t.Errorf("bootstrap env %v lacks the external Keycloak URL", boot.TaskTemplate.ContainerSpec.Env)
	}
	// without the option the network is there
	st = load(t, OpenZiti, fullVars())
	found := false
	for _, n := range st.Networks {
		found = found || strings.HasSuffix(n.Name, "_keycloak")
	}
	if !found {
		t.Error("the keycloak network is missing without ExternalKeycloak")
	}
}

// The scheduled backup service runs next to the data it reads: the controller's and SPIRE's volumes, Keycloak's
// network, a manager's Engine through its socket proxy (the lock; restore --swarm), its secrets in /run/secrets.
func TestBackupService(t *testing.T) {
	oz := load(t, OpenZiti, fullVars())
	b := service(t, oz, "backup")
	if got := b.TaskTemplate.ContainerSpec.Args; strings.Join(got, " ") != "backup --schedule @daily" {
		t.Errorf("args %v", got)
	}
	var mounts []string
	for _, m := range b.TaskTemplate.ContainerSpec.Mounts {
		mounts = append(mounts, m.Source+":"+m.Target)
	}
	if got := strings.Join(mounts, " "); got != "t-openziti_ziti-controller-data:/ziti-controller t-spire_spire-server-data:/var/lib/spire/server "+
		"t-spire_spire-server-socket:/run/spire-server t-openziti_backup-docker:/run/zb-docker t-openziti_backup-scratch:/var/tmp" {
		t.Errorf("mounts %s", got)
	}
	var secrets []string
	for _, r := range b.TaskTemplate.ContainerSpec.Secrets {
		secrets = append(secrets, r.File.Name)
	}
	if got := strings.Join(secrets, " "); got != "backup_encryption_key keycloak_db_password s3_secret_access_key ziti_admin_password" {
		t.Errorf("secrets %s", got)
	}
	if got := b.TaskTemplate.Placement.Constraints; len(got) != 3 || got[2] != "node.role == manager" {
		t.Errorf("placement %v", got)
	}
	if len(b.TaskTemplate.Networks) != 2 {
		t.Errorf("networks %v", b.TaskTemplate.Networks)
	}
}

// A secret's name carries a slow, salted hash of its data, not a prefix of its SHA-256 (offline guessing of a
// weak password at billions a second); the same data keeps its name (a re-run writes nothing), and the same
// password gets another name in another stack or key. A config keeps the plain hash.
func TestSecretNamesCarryASaltedSlowHash(t *testing.T) {
	pw := []byte("hunter2")
	sum := sha256.Sum256(pw)
	plain := hex.EncodeToString(sum[:4])
	a, err := newObject("zb-spire", "pw", pw, nil, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasSuffix(a.Name, plain) {
		t.Errorf("secret %s carries the unsalted SHA-256 prefix %s of its data", a.Name, plain)
	}
	if again, _ := newObject("zb-spire", "pw", pw, nil, true, nil); again.Name != a.Name {
		t.Errorf("same data, names %s and %s", a.Name, again.Name)
	}
	if other, _ := newObject("zb-keycloak", "pw", pw, nil, true, nil); strings.TrimPrefix(other.Name, "zb-keycloak_pw_") == strings.TrimPrefix(a.Name, "zb-spire_pw_") {
		t.Errorf("same password, same digits in two stacks: %s %s", a.Name, other.Name)
	}
	if cfg, _ := newObject("zb-spire", "conf", pw, nil, false, nil); cfg.Name != "zb-spire_conf_"+plain {
		t.Errorf("config %s; want the plain hash %s", cfg.Name, plain)
	}
}
