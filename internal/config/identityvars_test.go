package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParseRouterIDs(t *testing.T) {
	got, problems := ParseRouterIDs(" spiffe://zb.test/ziti-router=ziti-edge-router:public;\n spiffe://zb.test/r2=r2:a,b-c spiffe://zb.test/r3=r3 ")
	if len(problems) != 0 || len(got) != 3 {
		t.Fatalf("ParseRouterIDs = %+v, %v", got, problems)
	}
	if got[0].SpiffeID.String() != "spiffe://zb.test/ziti-router" || got[0].Name != "ziti-edge-router" || !slices.Equal(got[0].RoleAttributes, []string{"public"}) ||
		!slices.Equal(got[1].RoleAttributes, []string{"a", "b-c"}) || got[2].Name != "r3" || got[2].RoleAttributes != nil {
		t.Errorf("ParseRouterIDs = %+v", got)
	}

	for in, want := range map[string]string{
		"spiffe://zb.test/r":                             "has no =",
		"zb.test/r=r":                                    "is not a SPIFFE ID",
		"spiffe://zb.test/r=":                            `router name ""`,
		"spiffe://zb.test/r=a/b":                         `router name "a/b"`,
		"spiffe://zb.test/r=r:#public":                   `role attribute "#public"`,
		"spiffe://zb.test/r=r:a,,b":                      `role attribute ""`,
		"spiffe://zb.test/r=r1;spiffe://zb.test/r=r2":    "mapped twice",
		"spiffe://zb.test/r=r1;spiffe://zb.test/s=r1:x":  "router r1 is mapped twice",
		"spiffe://zb.test/r=r1 spiffe://Zb.test/s=r2:x=": "is not a SPIFFE ID",
	} {
		_, problems := ParseRouterIDs(in)
		if len(problems) != 1 || !strings.Contains(problems[0], want) {
			t.Errorf("ParseRouterIDs(%q) problems %q; want one containing %q", in, problems, want)
		}
	}
}

func TestLoadRouterEnrolServerNamesEveryProblem(t *testing.T) {
	_, err := LoadRouterEnrolServer(Sources{Env: env(map[string]string{
		"ZITI_CTRL_URL": "http://ctrl:1280", "ZB_ROUTER_IDS": "nonsense", "SPIFFE_ENDPOINT_SOCKET": "unix://relative/api.sock",
		"ZB_SECRETS_DIR": t.TempDir(),
	})})
	if !IsInvalid(err) {
		t.Fatalf("err = %v", err)
	}
	for _, v := range []string{"ZITI_CTRL_URL", "ZITI_PWD", "ZITI_CA_FILE", "ZB_ROUTER_IDS", "SPIFFE_ENDPOINT_SOCKET"} {
		if !strings.Contains(err.Error(), "- "+v+":") {
			t.Errorf("error does not name %s:\n%v", v, err)
		}
	}

	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	pwd := filepath.Join(dir, "pwd")
	os.WriteFile(ca, []byte("pem"), 0o600)
	os.WriteFile(pwd, []byte("secret\n"), 0o600)
	c, err := LoadRouterEnrolServer(Sources{Env: env(map[string]string{
		"ZITI_CTRL_URL": "https://ctrl:1280", "ZITI_CA_FILE": ca, "ZITI_PWD_FILE": pwd,
		"ZB_ROUTER_IDS": "spiffe://zb.test/ziti-router=ziti-edge-router:public",
	})})
	if err != nil {
		t.Fatal(err)
	}
	if c.Ziti.User != "admin" || c.Ziti.Password.Value() != "secret" || c.Socket != "unix:///run/spire/agent/public/api.sock" ||
		c.Listen != ":8443" || len(c.Routers) != 1 || c.WaitTimeout <= 0 {
		t.Errorf("config %+v", c)
	}
}

func TestLoadWorkloadAndRouterEnrolClient(t *testing.T) {
	w, err := LoadWorkload(Sources{Env: env(map[string]string{"ZITI_CTRL_URL": "https://ctrl:1280", "ZITI_CA_TOFU": "true",
		"ZB_WORKLOAD_SPIFFE_ID": "spiffe://zb.test/app", "SPIFFE_ENDPOINT_SOCKET": "tcp://127.0.0.1:8082"})})
	if err != nil || w.SpiffeID.String() != "spiffe://zb.test/app" || !w.Ziti.CATOFU || w.Listen != "127.0.0.1:9109" {
		t.Errorf("LoadWorkload = %+v, %v", w, err)
	}
	_, err = LoadWorkload(Sources{Env: env(map[string]string{"ZB_WORKLOAD_SPIFFE_ID": "app"})})
	if !IsInvalid(err) || !strings.Contains(err.Error(), "ZB_WORKLOAD_SPIFFE_ID") || !strings.Contains(err.Error(), "ZITI_CA_FILE") {
		t.Errorf("LoadWorkload with a bad SPIFFE ID and no CA: %v", err)
	}

	_, err = LoadRouterEnrolClient(Sources{Env: env(map[string]string{})})
	if !IsInvalid(err) || !strings.Contains(err.Error(), "ZB_ROUTER_ENROL_URL") || !strings.Contains(err.Error(), "ZB_ROUTER_ENROL_SERVER_ID") {
		t.Errorf("LoadRouterEnrolClient without URL and server ID: %v", err)
	}
	c, err := LoadRouterEnrolClient(Sources{Env: env(map[string]string{"ZB_ROUTER_ENROL_URL": "https://enrol:8443",
		"ZB_ROUTER_ENROL_SERVER_ID": "spiffe://zb.test/ziti-bootstrap/router-enrol"})})
	if err != nil || c.URL.Host != "enrol:8443" || c.ServerID.Path() != "/ziti-bootstrap/router-enrol" {
		t.Errorf("LoadRouterEnrolClient = %+v, %v", c, err)
	}
}
