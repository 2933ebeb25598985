package policyfile

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/ziti"
)

// Policy is a validated policy file in the controller's terms: what the step converges to. Parse and LoadFile
// make one; its lists keep the file's order.
type Policy struct {
	File string
	// Configs have ConfigTypeName set (intercept.v1 or host.v1); their ids and type ids are found at apply.
	Configs []ziti.Config
	// Services name their configs: Configs holds config names, not ids.
	Services []ziti.Service
	// PostureChecks have their MAC addresses normalised as the controller stores them.
	PostureChecks []ziti.PostureCheck
	// Policies hold roles in the file's form: "#attribute", "#all", "@name" (names, not ids).
	ServicePolicies           []ziti.ServicePolicy
	EdgeRouterPolicies        []ziti.EdgeRouterPolicy
	ServiceEdgeRouterPolicies []ziti.ServiceEdgeRouterPolicy
	// Identities maps identity names to the role attributes the file gives them.
	Identities map[string][]string
	// Rules derive role attributes from externalIds.
	Rules []Rule
	// External is the file's external section: names and attributes made elsewhere.
	External External

	Where map[string]Problem // kind + "\x00" + name → where the file declares it (Msg empty)
	Refs  []Ref              // "@name" roles naming identities and edge routers, resolved when planning
}

// Ref is a role naming an object the file does not define; planning checks that it exists.
type Ref struct {
	Kind string // RefIdentity or RefRouter
	Name string
	At   Problem
}

// The kinds of a Ref.
const (
	RefIdentity = "identity"
	RefRouter   = "edge router"
)

// Rule gives role attributes to the identities whose externalId matches Pattern.
type Rule struct {
	Pattern    string
	Attributes []string // templates: {var} is replaced by the segment the pattern captured
	re         *regexp.Regexp
	vars       []string
}

var placeholderRE = regexp.MustCompile(`^\{([A-Za-z][A-Za-z0-9_-]*)\}$`)

// compileRule compiles a pattern: '/'-separated segments, each literal, {var} or *.
func compileRule(pattern string) (*regexp.Regexp, []string, error) {
	if pattern == "" {
		return nil, nil, fmt.Errorf("missing; expected a pattern such as spiffe://example.org/device/{type}/{location}/{name}")
	}
	var b strings.Builder
	var vars []string
	b.WriteString("^")
	for i, seg := range strings.Split(pattern, "/") {
		if i > 0 {
			b.WriteString("/")
		}
		switch m := placeholderRE.FindStringSubmatch(seg); {
		case m != nil:
			if slices.Contains(vars, m[1]) {
				return nil, nil, fmt.Errorf("placeholder {%s} is used twice; give each segment its own name", m[1])
			}
			vars = append(vars, m[1])
			b.WriteString("([^/]+)")
		case seg == "*":
			b.WriteString("[^/]+")
		case strings.ContainsAny(seg, "{}*"):
			return nil, nil, fmt.Errorf("segment %q: a placeholder is a whole segment, {name} (letters, digits, - and _), or * for any one segment", seg)
		default:
			b.WriteString(regexp.QuoteMeta(seg))
		}
	}
	b.WriteString("$")
	re, err := regexp.Compile(b.String())
	if err != nil {
		return nil, nil, fmt.Errorf("cannot compile: %v", err)
	}
	return re, vars, nil
}

var templateVarRE = regexp.MustCompile(`\{([^{}]*)\}`)

// Match returns the attributes the rule gives an identity with externalID, or ok=false when it does not match.
// Attributes that are not valid role attributes after substitution are returned in bad.
func (r Rule) Match(externalID string) (attrs, bad []string, ok bool) {
	if r.re == nil || externalID == "" {
		return nil, nil, false
	}
	m := r.re.FindStringSubmatch(externalID)
	if m == nil {
		return nil, nil, false
	}
	vals := map[string]string{}
	for i, v := range r.vars {
		vals[v] = m[i+1]
	}
	for _, t := range r.Attributes {
		a := templateVarRE.ReplaceAllStringFunc(t, func(s string) string { return vals[s[1:len(s)-1]] })
		if attrProblem(a) != "" {
			bad = append(bad, a)
			continue
		}
		attrs = append(attrs, a)
	}
	return attrs, bad, true
}

// templateRE turns an attribute template into a pattern of the attributes it can produce.
func templateRE(t string) *regexp.Regexp {
	parts := templateVarRE.Split(t, -1)
	for i := range parts {
		parts[i] = regexp.QuoteMeta(parts[i])
	}
	return regexp.MustCompile("^" + strings.Join(parts, "[^/]+") + "$")
}

// attrProblem says what is wrong with a role attribute, or "".
func attrProblem(a string) string {
	switch {
	case a == "":
		return "empty; expected a role attribute such as location:kitchen"
	case a[0] == '#' || a[0] == '@':
		return fmt.Sprintf("%q: write a role attribute without # or @ (those mark roles in policies)", a)
	case strings.Contains(a, ","):
		return fmt.Sprintf("%q: a role attribute must not contain ','", a)
	case strings.IndexFunc(a, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0:
		return fmt.Sprintf("%q: a role attribute must not contain spaces or control characters", a)
	case len(a) > 255:
		return "longer than 255 characters"
	}
	return ""
}

// nameProblem says what is wrong with an object name, or "".
func nameProblem(n string) string {
	switch {
	case n == "":
		return "missing; expected a name"
	case strings.TrimSpace(n) != n:
		return fmt.Sprintf("%q has leading or trailing spaces", n)
	case strings.IndexFunc(n, func(r rune) bool { return r < ' ' || r == 0x7f }) >= 0:
		return fmt.Sprintf("%q contains control characters", n)
	case len(n) > 255:
		return "longer than 255 characters"
	}
	return ""
}

// Declared is where the file declares the object of kind named name (a zero Problem when it does not).
func (p *Policy) Declared(kind, name string) Problem { return p.Where[kind+"\x00"+name] }

// At formats where the file declares an object, for messages: "FILE:LINE (PATH)".
func At(pr Problem) string {
	if pr.File == "" {
		return "the policy file"
	}
	return fmt.Sprintf("%s:%d (%s)", pr.File, pr.Line, pr.Path)
}
