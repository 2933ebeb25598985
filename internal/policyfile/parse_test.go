package policyfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/yamlguard"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/ziti"
)

const examplePath = "../../examples/policies/iot-segments.yaml"

func TestExampleFileParses(t *testing.T) {
	p, err := LoadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	var cfgs []string
	for _, c := range p.Configs {
		cfgs = append(cfgs, c.Name+"/"+c.ConfigTypeName)
	}
	slices.Sort(cfgs)
	want := []string{"iot-firmware-host/host.v1", "iot-firmware-intercept/intercept.v1", "iot-motion-events.host.v1/host.v1",
		"iot-motion-events.intercept.v1/intercept.v1", "iot-sensor-data.host.v1/host.v1", "iot-sensor-data.intercept.v1/intercept.v1"}
	if !slices.Equal(cfgs, want) {
		t.Fatalf("configs %v", cfgs)
	}
	if len(p.Services) != 3 || !slices.Equal(p.Services[0].Configs, []string{"iot-sensor-data.intercept.v1", "iot-sensor-data.host.v1"}) ||
		!p.Services[0].EncryptionRequired || p.Services[0].TerminatorStrategy != "smartrouting" {
		t.Fatalf("services %+v", p.Services)
	}
	if len(p.ServicePolicies) != 4 || p.ServicePolicies[0].Semantic != "AllOf" || p.ServicePolicies[1].Semantic != "AnyOf" {
		t.Fatalf("service policies %+v", p.ServicePolicies)
	}
	if len(p.EdgeRouterPolicies) != 1 || !slices.Equal(p.EdgeRouterPolicies[0].IdentityRoles,
		[]string{"#device-type:motion", "#device-type:temperature", "#iot-gateway", "#location:kitchen", "#protocol:zigbee", "@iot-sensor-hub"}) ||
		!slices.Equal(p.EdgeRouterPolicies[0].EdgeRouterRoles, []string{"#public"}) {
		t.Fatalf("default edge router policy %+v", p.EdgeRouterPolicies)
	}
	if len(p.ServiceEdgeRouterPolicies) != 1 || !slices.Equal(p.ServiceEdgeRouterPolicies[0].ServiceRoles,
		[]string{"@iot-sensor-data", "@iot-motion-events", "@iot-firmware"}) {
		t.Fatalf("default service edge router policy %+v", p.ServiceEdgeRouterPolicies)
	}
	var data map[string]any
	for _, c := range p.Configs {
		if c.Name == "iot-sensor-data.intercept.v1" {
			data = c.Data
		}
	}
	if !ziti.EqualJSON(data, map[string]any{"protocols": []string{"tcp"}, "addresses": []string{"sensor-data.kitchen.iot"},
		"portRanges": []any{map[string]int{"low": 8883, "high": 8883}}, "sourceIp": "$src_ip:$src_port",
		"allowedSourceAddresses": []string{"192.168.20.0/24"}}) {
		t.Fatalf("intercept data %v", data)
	}
	if len(p.Refs) != 1 { // @iot-sensor-hub, named by a service policy (and so by the default edge router policy)
		t.Fatalf("refs %+v", p.Refs)
	}
	attrs, _, ok := p.Rules[0].Match("spiffe://openziti.local/device/temperature/kitchen/t1")
	if !ok || !slices.Equal(attrs, []string{"device-type:temperature", "location:kitchen", "iot-device"}) {
		t.Fatalf("rule: %v %v", attrs, ok)
	}
}

// line returns the 1-based line of the first line of doc containing marker.
func line(doc, marker string) int {
	for i, l := range strings.Split(doc, "\n") {
		if strings.Contains(l, marker) {
			return i + 1
		}
	}
	return -1
}

func TestValidationNamesFileLinePathAndWhatIsExpected(t *testing.T) {
	const svc = "services:\n  - name: s\n    roleAttributes: [a]\n"
	for name, tc := range map[string]struct {
		doc  string
		path string
		want string // substring of the message
	}{
		"unknown key":           {svc + "    intercpt: {} # <-\n", "services[0].intercpt", `unknown key "intercpt" (did you mean "intercept"?)`},
		"unknown top-level key": {"service: [] # <-\n", "service", `did you mean "services"?`},
		"bad CIDR": {svc + "    intercept:\n      protocols: [tcp]\n      addresses: [a.iot]\n      portRanges: [{low: 1, high: 2}]\n      allowedSourceAddresses:\n        - 10.0.0.0/33 # <-\n",
			"services[0].intercept.allowedSourceAddresses[0]", `"10.0.0.0/33" is not a valid CIDR; expected an IP address or CIDR`},
		"CIDR with host bits": {svc + "    host:\n      protocol: tcp\n      address: 127.0.0.1\n      port: 80\n      allowedSourceAddresses: [10.1.2.3/16] # <-\n",
			"services[0].host.allowedSourceAddresses[0]", "host bits set (the network is 10.1.0.0/16)"},
		"port out of range": {svc + "    intercept:\n      protocols: [tcp]\n      addresses: [a.iot]\n      portRanges:\n        - low: 1\n          high: 70000 # <-\n",
			"services[0].intercept.portRanges[0].high", "70000 is out of range; expected a port number 1-65535"},
		"low above high": {svc + "    intercept:\n      protocols: [tcp]\n      addresses: [a.iot]\n      portRanges:\n        - low: 90\n          high: 80 # <-\n",
			"services[0].intercept.portRanges[0].high", "80 is below low (90)"},
		"missing high": {svc + "    intercept:\n      protocols: [tcp]\n      addresses: [a.iot]\n      portRanges:\n        - low: 90 # <-\n",
			"services[0].intercept.portRanges[0].high", "missing; expected a port number"},
		"bad protocol": {svc + "    intercept:\n      protocols: [tcp, sctp] # <-\n      addresses: [a.iot]\n      portRanges: [{low: 1, high: 2}]\n",
			"services[0].intercept.protocols[1]", `"sctp" is not a protocol; expected one of tcp, udp`},
		"bad address": {svc + "    intercept:\n      protocols: [tcp]\n      addresses: [\"a b.iot\"] # <-\n      portRanges: [{low: 1, high: 2}]\n",
			"services[0].intercept.addresses[0]", "not a host name"},
		"bad IP": {svc + "    host:\n      protocol: tcp\n      address: 10.0.0.300 # <-\n      port: 80\n",
			"services[0].host.address", "not a valid IP address"},
		"bad sourceIp": {svc + "    intercept:\n      protocols: [tcp]\n      addresses: [a.iot]\n      portRanges: [{low: 1, high: 2}]\n      sourceIp: \"$src_ip:99999\" # <-\n",
			"services[0].intercept.sourceIp", "port \"99999\" is not 1-65535"},
		"host port with forwardPort": {svc + "    host:\n      protocol: tcp\n      address: a\n      forwardPort: true\n      port: 80 # <-\n      allowedPortRanges: [{low: 1, high: 2}]\n",
			"services[0].host.port", "not used with forwardPort: true"},
		"host missing port": {svc + "    host: # <-\n      protocol: tcp\n      address: a\n", "services[0].host.port", "missing; expected a port number"},
		"string where a list belongs": {svc + "    intercept:\n      protocols: [tcp]\n      addresses: [a.iot]\n      portRanges: \"8883\" # <-\n",
			"services[0].intercept.portRanges", `expected a list (e.g. [a, b], or one ` + "`- item`" + ` per line), got "8883"`},
		"quoted number":    {svc + "    host:\n      protocol: tcp\n      address: a\n      port: \"80\" # <-\n", "services[0].host.port", `expected a whole number, got "80"`},
		"boolean as text":  {svc + "    encryptionRequired: yes # <-\n", "services[0].encryptionRequired", `expected true or false, got "yes"`},
		"undefined config": {svc + "    configs: [nope] # <-\n", "services[0].configs[0]", `no config is named "nope" in this file; declare it under configs:, or list it in external.configs`},
		"two configs of a type": {"configs:\n  - name: i\n    intercept: {protocols: [tcp], addresses: [a], portRanges: [{low: 1, high: 1}]}\n" + svc +
			"    intercept: {protocols: [tcp], addresses: [a], portRanges: [{low: 1, high: 1}]}\n    configs: [i] # <-\n",
			"services[0].configs[0]", "second intercept.v1 config of this service (s.intercept.v1 is the first)"},
		"undefined identity attribute": {svc + "servicePolicies:\n  - name: p\n    type: Dial\n    identityRoles: ['#nope'] # <-\n    serviceRoles: ['@s']\n",
			"servicePolicies[0].identityRoles[0]", `no identity has role attribute "nope" in this file; give it to identities`},
		"undefined service": {svc + "servicePolicies:\n  - name: p\n    type: Dial\n    identityRoles: ['#all']\n    serviceRoles: ['@nope'] # <-\n",
			"servicePolicies[0].serviceRoles[0]", `no service is named "nope" in this file; declare it under services:, or list it in external.services`},
		"undefined service attribute": {svc + "servicePolicies:\n  - name: p\n    type: Dial\n    identityRoles: ['#all']\n    serviceRoles: ['#b'] # <-\n",
			"servicePolicies[0].serviceRoles[0]", `no service has role attribute "b"`},
		"undefined posture check": {svc + "servicePolicies:\n  - name: p\n    type: Dial\n    identityRoles: ['#all']\n    serviceRoles: ['#a']\n    postureCheckRoles: ['@pc'] # <-\n",
			"servicePolicies[0].postureCheckRoles[0]", `no posture check is named "pc"`},
		"not a role": {svc + "servicePolicies:\n  - name: p\n    type: Dial\n    identityRoles: [all] # <-\n    serviceRoles: ['#a']\n",
			"servicePolicies[0].identityRoles[0]", `"all" is not a role; expected #attribute, #all or @name`},
		"bad policy type": {svc + "servicePolicies:\n  - name: p\n    type: dial # <-\n    identityRoles: ['#all']\n    serviceRoles: ['#a']\n",
			"servicePolicies[0].type", `"dial" is not a service policy type; expected one of Dial, Bind`},
		"bad semantic": {svc + "servicePolicies:\n  - name: p\n    type: Dial\n    semantic: All # <-\n    identityRoles: ['#all']\n    serviceRoles: ['#a']\n",
			"servicePolicies[0].semantic", "expected one of AnyOf, AllOf"},
		"no identity roles": {svc + "servicePolicies:\n  - name: p # <-\n    type: Dial\n    serviceRoles: ['#a']\n",
			"servicePolicies[0].identityRoles", "missing; expected at least one identity role"},
		"duplicate service": {svc + "  - name: s # <-\n", "services[1].name", `"s" is already the name of service services[0] (line 2)`},
		"duplicate policy": {svc + "servicePolicies:\n  - {name: p, type: Dial, identityRoles: ['#all'], serviceRoles: ['#a']}\n  - {name: p, type: Bind, identityRoles: ['#all'], serviceRoles: ['#a']} # <-\n",
			"servicePolicies[1].name", `"p" is already the name of service policy servicePolicies[0]`},
		"duplicate key": {"services:\n  - name: s\n    name: t # <-\n", "services[0].name", `key "name" is given twice (first at line 2)`},
		"missing name":  {"services:\n  - roleAttributes: [a] # <-\n", "services[0].name", "missing; expected a name"},
		"bad rule placeholder": {"identityRules:\n  - externalId: spiffe://td/device/{type}\n    roleAttributes: ['location:{location}'] # <-\n",
			"identityRules[0].roleAttributes[0]", `{location} is not a placeholder of externalId "spiffe://td/device/{type}"; expected one of {type}`},
		"partial placeholder": {"identityRules:\n  - externalId: spiffe://td/dev-{type} # <-\n    roleAttributes: [a]\n",
			"identityRules[0].externalId", "a placeholder is a whole segment"},
		"attribute with #":         {"external:\n  identityRoles: ['#x'] # <-\n", "external.identityRoles[0]", "without # or @"},
		"bad MAC":                  {"postureChecks:\n  - name: m\n    type: MAC\n    macAddresses: [zz:bb:cc:dd:ee:ff] # <-\n", "postureChecks[0].macAddresses[0]", "not a MAC address"},
		"bad OS":                   {"postureChecks:\n  - name: o\n    type: OS\n    operatingSystems: [{type: linux}] # <-\n", "postureChecks[0].operatingSystems[0].type", `"linux" is not an operating system; expected one of Windows`},
		"posture type":             {"postureChecks:\n  - name: o\n    type: DOMAIN # <-\n", "postureChecks[0].type", "expected one of OS, MAC"},
		"defaults without routers": {svc + "defaults: # <-\n  serviceEdgeRouterPolicy: x\n", "defaults.edgeRouterRoles", "missing; expected at least one edge router role"},
		"defaults name taken": {svc + "serviceEdgeRouterPolicies:\n  - {name: x, serviceRoles: ['#all'], edgeRouterRoles: ['#all']}\ndefaults:\n  edgeRouterRoles: ['#all']\n  serviceEdgeRouterPolicy: x # <-\n",
			"defaults.serviceEdgeRouterPolicy", `"x" is already the name of service edge router policy serviceEdgeRouterPolicies[0]`},
		"terminator strategy":   {svc + "    terminatorStrategy: fastest # <-\n", "services[0].terminatorStrategy", "expected one of smartrouting, weighted, random, ha"},
		"external and declared": {svc + "external:\n  services: [s]\n", "services[0].name", `"s" is also listed in external.services`},
		"not a mapping":         {"- a # <-\n", "", "expected a mapping with the keys configs, defaults"},
		"syntax":                {"services:\n  - name: [a # <-\n", "", "not valid YAML"},
		"tab indentation":       {"services:\n\t- name: a # <-\n", "", "not valid YAML"},
		"two documents":         {"services: []\n--- # <-\nconfigs: []\n", "", "2 YAML documents"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse("f.yaml", []byte(tc.doc))
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("want *Error, got %v", err)
			}
			wantLine := line(tc.doc, "# <-")
			if tc.path == "services[0].name" && name == "external and declared" {
				wantLine = 2
			}
			if name == "syntax" || name == "tab indentation" {
				wantLine = -1 // the parser's own idea of where
			}
			path := tc.path
			if path == "" {
				path = "(document)"
			}
			for _, p := range pe.Problems {
				if p.Path == tc.path && strings.Contains(p.Msg, tc.want) && (wantLine < 0 || p.Line == wantLine) {
					if !strings.Contains(err.Error(), fmt.Sprintf("f.yaml:%d: %s: ", p.Line, path)) {
						t.Fatalf("the message does not name file, line and path: %v", err)
					}
					return
				}
			}
			t.Fatalf("no problem at line %d, path %s, saying %q in:\n%v", wantLine, tc.path, tc.want, err)
		})
	}
}

func TestValidationCollectsEveryProblemInFileOrder(t *testing.T) {
	doc := `services:
  - name: a
    colour: red
    intercept:
      protocols: [icmp]
      addresses: [a.iot]
      portRanges: [{low: 0, high: 1}]
servicePolicies:
  - name: p
    type: Dial
    identityRoles: ["#ghost"]
    serviceRoles: ["@a", "@b"]
`
	_, err := Parse("f.yaml", []byte(doc))
	var pe *Error
	if !errors.As(err, &pe) {
		t.Fatal(err)
	}
	var got []string
	for _, p := range pe.Problems {
		got = append(got, fmt.Sprintf("%d %s", p.Line, p.Path))
	}
	t.Log(err)
	want := []string{
		"3 services[0].colour",
		"5 services[0].intercept.protocols[0]",
		"7 services[0].intercept.portRanges[0].low",
		"11 servicePolicies[0].identityRoles[0]",
		"12 servicePolicies[0].serviceRoles[1]",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("problems:\n%s\nwant:\n%s\n%v", strings.Join(got, "\n"), strings.Join(want, "\n"), err)
	}
}

func TestWrongTypesDoNotCascade(t *testing.T) {
	// A list where a name belongs is one problem, not also "missing name".
	_, err := Parse("f.yaml", []byte("services:\n  - name: [a, b]\n"))
	var pe *Error
	if !errors.As(err, &pe) || len(pe.Problems) != 1 || pe.Problems[0].Path != "services[0].name" {
		t.Fatalf("%v", err)
	}
}

func TestEmptyFileDeclaresNothing(t *testing.T) {
	for _, doc := range []string{"", "# nothing\n", "---\n"} {
		p, err := Parse("f.yaml", []byte(doc))
		if err != nil || len(p.Services)+len(p.Configs)+len(p.ServicePolicies)+len(p.Identities) != 0 {
			t.Fatalf("%q: %+v %v", doc, p, err)
		}
	}
}

func TestAnchorsAndMerges(t *testing.T) {
	doc := `configs:
  - name: a
    host: &h
      protocol: tcp
      address: 10.0.0.1
      port: 80
  - name: b
    host:
      <<: *h
      port: 81
`
	p, err := Parse("f.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if !ziti.EqualJSON(p.Configs[1].Data, map[string]any{"protocol": "tcp", "address": "10.0.0.1", "port": 81}) {
		t.Fatalf("%v", p.Configs[1].Data)
	}
	// A billion laughs is refused with a location, quickly.
	bomb := "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n" +
		"d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n" +
		"services: [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
	if _, err := Parse("f.yaml", []byte(bomb)); err == nil || !strings.Contains(err.Error(), "f.yaml:") {
		t.Fatalf("bomb: %v", err)
	}
}

func TestRules(t *testing.T) {
	re, vars, err := compileRule("spiffe://td/device/{type}/*/{name}")
	if err != nil || !slices.Equal(vars, []string{"type", "name"}) {
		t.Fatal(err, vars)
	}
	r := Rule{Pattern: "x", Attributes: []string{"t:{type}", "n-{name}-x", "fixed", "bad {type}"}, re: re, vars: vars}
	attrs, bad, ok := r.Match("spiffe://td/device/temp/kitchen/t1")
	if !ok || !slices.Equal(attrs, []string{"t:temp", "n-t1-x", "fixed"}) || !slices.Equal(bad, []string{"bad temp"}) {
		t.Fatalf("%v %v %v", attrs, bad, ok)
	}
	for _, id := range []string{"spiffe://td/device/temp/t1", "spiffe://td/device/temp/kitchen/t1/x", "spiffe://td/device//kitchen/t1", "spiffe://tdx/device/a/b/c", ""} {
		if _, _, ok := r.Match(id); ok {
			t.Errorf("%q matched", id)
		}
	}
	if _, _, err := compileRule("a/{x}/{x}"); err == nil {
		t.Error("repeated placeholder accepted")
	}
	// Patterns are literal apart from placeholders: regexp characters match only themselves.
	re, _, _ = compileRule("spiffe://t.d/(a)+")
	if !re.MatchString("spiffe://t.d/(a)+") || re.MatchString("spiffe://tXd/aa") {
		t.Error("pattern is not literal")
	}
	// A role naming a rule-derived attribute validates; one the rules cannot produce does not.
	base := "identityRules:\n  - externalId: spiffe://td/device/{type}/{loc}/{name}\n    roleAttributes: ['type:{type}', 'loc:{loc}']\nservices:\n  - {name: s}\n"
	if _, err := Parse("f.yaml", []byte(base+"servicePolicies:\n  - {name: p, type: Dial, semantic: AllOf, identityRoles: ['#type:temp', '#loc:kitchen'], serviceRoles: ['@s']}\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := Parse("f.yaml", []byte(base+"servicePolicies:\n  - {name: p, type: Dial, identityRoles: ['#kind:temp'], serviceRoles: ['@s']}\n")); err == nil {
		t.Fatal("underivable attribute accepted")
	}
}

func TestLoadFileErrors(t *testing.T) {
	if _, err := LoadFile(filepath.Join(t.TempDir(), "absent.yaml")); err == nil || IsInvalid(err) {
		t.Fatalf("absent file: %v", err)
	}
	p := filepath.Join(t.TempDir(), "p.yaml")
	if err := os.WriteFile(p, []byte("services:\n  - name: a\n    port: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadFile(p)
	if !IsInvalid(err) || !strings.Contains(err.Error(), p+":3: services[0].port: unknown key") {
		t.Fatalf("%v", err)
	}
}

// TestDocExampleParses keeps the package documentation's file reference valid.
func TestDocExampleParses(t *testing.T) {
	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	in := false
	for _, l := range strings.Split(string(src), "\n") {
		code, ok := strings.CutPrefix(l, "//\t")
		switch {
		case ok && strings.HasPrefix(code, "identityRules:"):
			in = true
		case !ok:
			in = false
		}
		if in {
			b.WriteString(code + "\n")
		}
	}
	p, err := Parse("doc.go", []byte(b.String()))
	if err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	if len(p.Services) != 1 || len(p.Configs) != 2 || len(p.PostureChecks) != 2 || len(p.EdgeRouterPolicies) != 2 || len(p.ServiceEdgeRouterPolicies) != 2 {
		t.Fatalf("%+v", p)
	}
}

// A policy file is the user's: a "billion laughs" alias bomb is refused at its first alias, before the walk or
// the decoder expand it.
func TestParseRefusesAliasBombs(t *testing.T) {
	bomb := yamlguard.Bomb("services")
	_, err := Parse("bomb.yml", []byte(bomb))
	var pe *Error
	if !errors.As(err, &pe) || len(pe.Problems) != 1 || pe.Problems[0].Line != 2 || !strings.Contains(err.Error(), "aliases") {
		t.Fatalf("alias bomb: %v; want one problem at line 2 about its aliases", err)
	}
}
