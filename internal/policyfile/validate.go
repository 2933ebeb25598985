package policyfile

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/ziti"
)

// TerminatorStrategies the controller knows.
var TerminatorStrategies = []string{"smartrouting", "weighted", "random", "ha"}

// Suffixes of the names of configs declared inline in a service (NAME.intercept.v1, NAME.host.v1).
const (
	InlineInterceptSuffix = "." + ziti.ConfigTypeIntercept
	InlineHostSuffix      = "." + ziti.ConfigTypeHost
)

// checker collects the semantic problems of a decoded file.
type checker struct {
	w        *walker
	problems []Problem
}

func (c *checker) line(path string) int {
	for p := path; ; {
		if l, ok := c.w.lines[p]; ok {
			return l
		}
		if p == "" {
			return 1
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			p = ""
		} else {
			p = p[:i]
		}
	}
}

func (c *checker) loc(path string) Problem {
	return Problem{File: c.w.file, Line: c.line(path), Path: path}
}

func (c *checker) bad(path, format string, args ...any) {
	pr := c.loc(path)
	pr.Msg = fmt.Sprintf(format, args...)
	c.problems = append(c.problems, pr)
}

// structural reports whether path is at or under a path with a structural problem (already reported).
func (c *checker) structural(path string) bool {
	for _, b := range c.w.bad {
		if path == b || strings.HasPrefix(path, b+".") || strings.HasPrefix(path, b+"[") {
			return true
		}
	}
	return false
}

// namer checks the names of one kind for validity and uniqueness.
type namer struct {
	c     *checker
	kind  string // for messages
	first map[string]string
}

func (c *checker) namer(kind string) *namer {
	return &namer{c: c, kind: kind, first: map[string]string{}}
}

func (n *namer) check(path, name string) bool {
	if msg := nameProblem(name); msg != "" {
		n.c.bad(path, "%s", msg)
		return false
	}
	if prev, dup := n.first[name]; dup {
		n.c.bad(path, "%q is already the name of %s %s (line %d); %s names must be unique", name, n.kind, prev, n.c.line(prev), n.kind)
		return false
	}
	n.first[name] = strings.TrimSuffix(path, ".name")
	return true
}

func (c *checker) attrs(path string, attrs []string) []string {
	seen := map[string]bool{}
	var out []string
	for i, a := range attrs {
		p := fmt.Sprintf("%s[%d]", path, i)
		if msg := attrProblem(a); msg != "" {
			c.bad(p, "%s", msg)
			continue
		}
		if seen[a] {
			c.bad(p, "%q is listed twice; remove one", a)
			continue
		}
		seen[a] = true
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

func (c *checker) oneOf(path, v string, allowed []string, what string) bool {
	if slices.Contains(allowed, v) {
		return true
	}
	if v == "" {
		c.bad(path, "missing; expected %s: %s", what, strings.Join(allowed, ", "))
	} else {
		c.bad(path, "%q is not %s; expected one of %s", v, what, strings.Join(allowed, ", "))
	}
	return false
}

func (c *checker) port(path string, p *int) {
	switch {
	case p == nil:
		c.bad(path, "missing; expected a port number 1-65535")
	case *p < 1 || *p > 65535:
		c.bad(path, "%d is out of range; expected a port number 1-65535", *p)
	}
}

func (c *checker) portRanges(path string, rs []PortRange, required bool) []any {
	if len(rs) == 0 && required {
		c.bad(path, "missing; expected at least one range, e.g. [{low: 8883, high: 8883}]")
	}
	out := make([]any, 0, len(rs))
	for i, r := range rs {
		p := fmt.Sprintf("%s[%d]", path, i)
		c.port(p+".low", r.Low)
		c.port(p+".high", r.High)
		if r.Low != nil && r.High != nil {
			if *r.Low > *r.High {
				c.bad(p+".high", "%d is below low (%d); expected low <= high", *r.High, *r.Low)
			}
			out = append(out, map[string]any{"low": *r.Low, "high": *r.High})
		}
	}
	return out
}

func (c *checker) protocols(path string, ps []string) []string {
	if len(ps) == 0 {
		c.bad(path, "missing; expected at least one of tcp, udp")
	}
	seen := map[string]bool{}
	for i, p := range ps {
		pp := fmt.Sprintf("%s[%d]", path, i)
		if c.oneOf(pp, p, []string{"tcp", "udp"}, "a protocol") && seen[p] {
			c.bad(pp, "%q is listed twice; remove one", p)
		}
		seen[p] = true
	}
	return ps
}

var hostLabelRE = regexp.MustCompile(`^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$`)

// addresses checks a list of addresses: IPs and CIDRs, plus host names and *.wildcards when hosts is set.
func (c *checker) addresses(path string, as []string, required, hosts bool) []string {
	what := "an IP address or CIDR such as 10.20.0.0/16"
	if hosts {
		what = "a host name, *.domain wildcard, IP address or CIDR"
	}
	if len(as) == 0 && required {
		c.bad(path, "missing; expected at least one %s", what)
	}
	seen := map[string]bool{}
	for i, a := range as {
		p := fmt.Sprintf("%s[%d]", path, i)
		if msg := addressProblem(a, hosts); msg != "" {
			c.bad(p, "%s; expected %s", msg, what)
			continue
		}
		if seen[a] {
			c.bad(p, "%q is listed twice; remove one", a)
		}
		seen[a] = true
	}
	return as
}

func addressProblem(a string, hosts bool) string {
	if a == "" {
		return "empty"
	}
	if strings.Contains(a, "/") {
		pfx, err := netip.ParsePrefix(a)
		if err != nil {
			return fmt.Sprintf("%q is not a valid CIDR", a)
		}
		if m := pfx.Masked(); m != pfx {
			return fmt.Sprintf("%q has host bits set (the network is %s)", a, m)
		}
		return ""
	}
	if _, err := netip.ParseAddr(a); err == nil {
		return ""
	}
	if strings.Trim(a, "0123456789.") == "" || strings.Count(a, ":") > 1 {
		return fmt.Sprintf("%q is not a valid IP address", a)
	}
	if !hosts {
		return fmt.Sprintf("%q is not an IP address or CIDR", a)
	}
	h := strings.TrimSuffix(strings.TrimPrefix(a, "*."), ".")
	if len(h) > 253 {
		return fmt.Sprintf("%q is longer than a host name may be", a)
	}
	for _, l := range strings.Split(h, ".") {
		if !hostLabelRE.MatchString(l) {
			return fmt.Sprintf("%q is not a host name (label %q)", a, l)
		}
	}
	return ""
}

// sourceIPProblem checks an intercept.v1 sourceIp: HOST[:PORT] where HOST is an IP, $src_ip, $dst_ip or
// $tunneler_id.…, and PORT a number, $src_port or $dst_port.
func sourceIPProblem(s string) string {
	host, port := s, ""
	switch {
	case strings.HasPrefix(s, "["):
		end := strings.Index(s, "]")
		if end < 0 {
			return fmt.Sprintf("%q: missing ]", s)
		}
		host, port = s[1:end], strings.TrimPrefix(s[end+1:], ":")
		if rest := s[end+1:]; rest != "" && !strings.HasPrefix(rest, ":") {
			return fmt.Sprintf("%q: expected :PORT after ]", s)
		}
	case strings.Count(s, ":") == 1:
		host, port, _ = strings.Cut(s, ":")
	}
	switch {
	case host == "$src_ip" || host == "$dst_ip" || strings.HasPrefix(host, "$tunneler_id.") && len(host) > len("$tunneler_id."):
	default:
		if _, err := netip.ParseAddr(host); err != nil {
			return fmt.Sprintf("%q: %q is not an IP address, $src_ip, $dst_ip or $tunneler_id.name", s, host)
		}
	}
	if port == "" && strings.HasSuffix(s, ":") {
		return fmt.Sprintf("%q: empty port", s)
	}
	if port != "" && port != "$src_port" && port != "$dst_port" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Sprintf("%q: port %q is not 1-65535, $src_port or $dst_port", s, port)
		}
	}
	return ""
}

func (c *checker) intercept(path string, in *InterceptSpec) map[string]any {
	d := map[string]any{
		"protocols":  c.protocols(path+".protocols", in.Protocols),
		"addresses":  c.addresses(path+".addresses", in.Addresses, true, true),
		"portRanges": c.portRanges(path+".portRanges", in.PortRanges, true),
	}
	if _, ok := c.w.lines[path+".sourceIp"]; ok || in.SourceIP != "" {
		if msg := sourceIPProblem(in.SourceIP); msg != "" {
			c.bad(path+".sourceIp", "%s; expected e.g. $src_ip:$src_port", msg)
		}
		d["sourceIp"] = in.SourceIP
	}
	if len(in.AllowedSourceAddresses) > 0 {
		d["allowedSourceAddresses"] = c.addresses(path+".allowedSourceAddresses", in.AllowedSourceAddresses, false, false)
	}
	if o := in.DialOptions; o != nil {
		m := map[string]any{}
		if o.ConnectTimeoutSeconds != nil {
			if *o.ConnectTimeoutSeconds < 0 || *o.ConnectTimeoutSeconds > 3600 {
				c.bad(path+".dialOptions.connectTimeoutSeconds", "%d is out of range; expected 0-3600 seconds", *o.ConnectTimeoutSeconds)
			}
			m["connectTimeoutSeconds"] = *o.ConnectTimeoutSeconds
		}
		if o.Identity != "" {
			m["identity"] = o.Identity
		}
		d["dialOptions"] = m
	}
	return d
}

func (c *checker) host(path string, h *HostSpec) map[string]any {
	d := map[string]any{}
	if h.ForwardProtocol {
		c.unusedWith(h.Protocol != "", path, "protocol", "forwardProtocol")
		if len(h.AllowedProtocols) == 0 {
			c.bad(path+".allowedProtocols", "missing; forwardProtocol: true needs the protocols it may forward, e.g. [tcp]")
		} else {
			d["allowedProtocols"] = c.protocols(path+".allowedProtocols", h.AllowedProtocols)
		}
		d["forwardProtocol"] = true
	} else {
		if c.oneOf(path+".protocol", h.Protocol, []string{"tcp", "udp"}, "a protocol") {
			d["protocol"] = h.Protocol
		}
		c.onlyWith(len(h.AllowedProtocols) > 0, path, "allowedProtocols", "forwardProtocol")
	}
	if h.ForwardAddress {
		c.unusedWith(h.Address != "", path, "address", "forwardAddress")
		if len(h.AllowedAddresses) == 0 {
			c.bad(path+".allowedAddresses", "missing; forwardAddress: true needs the addresses it may forward to")
		} else {
			d["allowedAddresses"] = c.addresses(path+".allowedAddresses", h.AllowedAddresses, true, true)
		}
		d["forwardAddress"] = true
	} else {
		if h.Address == "" {
			c.bad(path+".address", "missing; expected the address to forward to, e.g. 127.0.0.1 or sensors.internal")
		} else if msg := addressProblem(h.Address, true); msg != "" || strings.Contains(h.Address, "/") || strings.HasPrefix(h.Address, "*") {
			if msg == "" {
				msg = fmt.Sprintf("%q is a range, not one address", h.Address)
			}
			c.bad(path+".address", "%s; expected one host name or IP address", msg)
		}
		d["address"] = h.Address
		c.onlyWith(len(h.AllowedAddresses) > 0, path, "allowedAddresses", "forwardAddress")
	}
	if h.ForwardPort {
		c.unusedWith(h.Port != nil, path, "port", "forwardPort")
		d["allowedPortRanges"] = c.portRanges(path+".allowedPortRanges", h.AllowedPortRanges, true)
		d["forwardPort"] = true
	} else {
		c.port(path+".port", h.Port)
		if h.Port != nil {
			d["port"] = *h.Port
		}
		c.onlyWith(len(h.AllowedPortRanges) > 0, path, "allowedPortRanges", "forwardPort")
	}
	if len(h.AllowedSourceAddresses) > 0 {
		d["allowedSourceAddresses"] = c.addresses(path+".allowedSourceAddresses", h.AllowedSourceAddresses, false, false)
	}
	return d
}

// unusedWith refuses field of the host config at path when it is set although flag (forwardProtocol, …) is true.
func (c *checker) unusedWith(set bool, path, field, flag string) {
	if set {
		c.bad(path+"."+field, "not used with %s: true; remove it, or remove %s", flag, flag)
	}
}

// onlyWith refuses field of the host config at path when it is set although flag is not true.
func (c *checker) onlyWith(set bool, path, field, flag string) {
	if set {
		c.bad(path+"."+field, "only used with %s: true", flag)
	}
}

func semanticOf(c *checker, path, s string) string {
	if s == "" {
		return ziti.SemanticAnyOf
	}
	c.oneOf(path, s, []string{ziti.SemanticAnyOf, ziti.SemanticAllOf}, "a semantic")
	return s
}

// roleSet says what roles of one kind may name.
type roleSet struct {
	kind      string          // "identity", "service", "posture check", "edge router"
	attrs     map[string]bool // attributes the file (or external) gives
	templates []*regexp.Regexp
	names     map[string]bool // objects the file (or external) defines; nil: checked when planning
	attrHelp  string
	nameHelp  string
}

func (c *checker) roles(path string, roles []string, rs *roleSet, required bool, p *Policy) []string {
	if len(roles) == 0 && required {
		c.bad(path, "missing; expected at least one %s role: #attribute, #all or @name", rs.kind)
	}
	seen := map[string]bool{}
	for i, r := range roles {
		rp := fmt.Sprintf("%s[%d]", path, i)
		if seen[r] {
			c.bad(rp, "%q is listed twice; remove one", r)
			continue
		}
		seen[r] = true
		if r == "" || (r[0] != '#' && r[0] != '@') || len(r) == 1 {
			c.bad(rp, "%q is not a role; expected #attribute, #all or @name", r)
			continue
		}
		body := r[1:]
		if strings.IndexFunc(body, func(r rune) bool { return r < ' ' || r == 0x7f }) >= 0 || strings.TrimSpace(body) != body {
			c.bad(rp, "%q has spaces around it or control characters", r)
			continue
		}
		if r[0] == '#' {
			if body == "all" || rs.attrs == nil || rs.attrs[body] {
				continue
			}
			if slices.ContainsFunc(rs.templates, func(re *regexp.Regexp) bool { return re.MatchString(body) }) {
				continue
			}
			c.bad(rp, "no %s has role attribute %q in this file; %s", rs.kind, body, rs.attrHelp)
			continue
		}
		switch {
		case rs.names == nil:
			p.Refs = append(p.Refs, Ref{Kind: rs.kind, Name: body, At: c.loc(rp)})
		case !rs.names[body]:
			c.bad(rp, "no %s is named %q in this file; %s", rs.kind, body, rs.nameHelp)
		}
	}
	return slices.Clone(roles)
}

// validate checks a decoded file and turns it into a Policy. Structural problems found while decoding are
// reported with the rest.
func validate(name string, f *File, w *walker) (*Policy, error) {
	v := &validation{c: &checker{w: w}, p: &Policy{File: name, Identities: map[string][]string{}, Where: map[string]Problem{}}}
	v.external(f.External)
	v.identities(f.Identities)
	v.rules(f.IdentityRules)
	v.postureChecks(f.PostureChecks)
	v.cfgNames, v.cfgType = v.c.namer("config"), map[string]string{}
	v.configs(f.Configs)
	v.services(f.Services)
	v.policies(f)
	v.defaults(f.Defaults)
	return v.report(name, w)
}

// validation is one run of validate: the policy it builds and what its sections learn for the next ones (the
// role attributes and names that exist, the configs' types, the routers' role sets).
type validation struct {
	c *checker
	p *Policy

	identityAttrs, serviceAttrs, postureAttrs map[string]bool // role attributes given or listed as external
	extServices, extPosture, extConfigs       map[string]bool // names listed as external
	templates                                 []*regexp.Regexp
	postureNames, serviceNames                map[string]bool
	cfgNames                                  *namer
	cfgType                                   map[string]string // config name → type
	dialers                                   []string          // identity roles of all service policies, for the default edge-router policy
	erpNames, serpNames                       *namer
	idRoles, svcRoles, pcRoles, routerRoles   *roleSet
}

// declare records where the file declares the object kind/name.
func (v *validation) declare(kind, objName, path string) {
	v.p.Where[kind+"\x00"+objName] = v.c.loc(path)
}

// external checks the objects and role attributes the file may name without defining them.
func (v *validation) external(ext External) {
	v.p.External = ext
	extAttrs := func(path string, as []string) map[string]bool {
		m := map[string]bool{}
		for _, a := range v.c.attrs(path, as) {
			m[a] = true
		}
		return m
	}
	extNames := func(kind, path string, ns []string) map[string]bool {
		m := map[string]bool{}
		for i, n := range ns {
			ip := fmt.Sprintf("%s[%d]", path, i)
			if msg := nameProblem(n); msg != "" {
				v.c.bad(ip, "%s", msg)
			} else if m[n] {
				v.c.bad(ip, "%q is listed twice; remove one", n)
			}
			m[n] = true
			v.declare(ExternalKind(kind), n, ip)
		}
		return m
	}
	v.identityAttrs = extAttrs("external.identityRoles", ext.IdentityRoles)
	v.serviceAttrs = extAttrs("external.serviceRoles", ext.ServiceRoles)
	v.postureAttrs = extAttrs("external.postureCheckRoles", ext.PostureCheckRoles)
	v.extServices = extNames(KindService, "external.services", ext.Services)
	v.extPosture = extNames(KindPostureCheck, "external.postureChecks", ext.PostureChecks)
	v.extConfigs = extNames(KindConfig, "external.configs", ext.Configs)
}

// identities checks the named identities and their role attributes.
func (v *validation) identities(list []IdentitySpec) {
	idNames := v.c.namer("identity")
	for i, in := range list {
		path := fmt.Sprintf("identities[%d]", i)
		if !idNames.check(path+".name", in.Name) {
			continue
		}
		attrs := v.c.attrs(path+".roleAttributes", in.RoleAttributes)
		if len(in.RoleAttributes) == 0 {
			v.c.bad(path+".roleAttributes", "missing; expected the role attributes this identity gets, e.g. [location:kitchen]")
		}
		v.p.Identities[in.Name] = attrs
		for _, a := range attrs {
			v.identityAttrs[a] = true
		}
		v.declare(KindIdentity, in.Name, path)
	}
}

// rules checks the identity rules: each placeholder of a template must be one of its externalId pattern.
func (v *validation) rules(list []IdentityRule) {
	for i, r := range list {
		path := fmt.Sprintf("identityRules[%d]", i)
		re, vars, err := compileRule(r.ExternalID)
		if err != nil {
			v.c.bad(path+".externalId", "%v", err)
			continue
		}
		if len(r.RoleAttributes) == 0 {
			v.c.bad(path+".roleAttributes", "missing; expected attribute templates such as device-type:{type}")
		}
		ok := true
		for j, t := range r.RoleAttributes {
			tp := fmt.Sprintf("%s.roleAttributes[%d]", path, j)
			for _, m := range templateVarRE.FindAllStringSubmatch(t, -1) {
				if !slices.Contains(vars, m[1]) {
					v.c.bad(tp, "{%s} is not a placeholder of externalId %q; expected one of %s", m[1], r.ExternalID, braces(vars))
					ok = false
				}
			}
			if msg := attrProblem(templateVarRE.ReplaceAllString(t, "x")); msg != "" || strings.ContainsAny(templateVarRE.ReplaceAllString(t, ""), "{}") {
				if msg == "" {
					msg = fmt.Sprintf("%q: unbalanced { or }", t)
				}
				v.c.bad(tp, "%s", msg)
				ok = false
			}
		}
		if !ok {
			continue
		}
		for _, t := range r.RoleAttributes {
			v.templates = append(v.templates, templateRE(t))
		}
		v.p.Rules = append(v.p.Rules, Rule{Pattern: r.ExternalID, Attributes: slices.Clone(r.RoleAttributes), re: re, vars: vars})
	}
}

// postureChecks checks the posture checks: OS checks name operating systems and versions, MAC checks addresses.
func (v *validation) postureChecks(list []PostureCheckSpec) {
	pcNames := v.c.namer("posture check")
	v.postureNames = map[string]bool{}
	for i, pc := range list {
		path := fmt.Sprintf("postureChecks[%d]", i)
		okName := pcNames.check(path+".name", pc.Name)
		if okName && v.extPosture[pc.Name] {
			v.c.bad(path+".name", "%q is also listed in external.postureChecks; remove it from one of them", pc.Name)
		}
		out := ziti.PostureCheck{Name: pc.Name, Type: pc.Type, RoleAttributes: v.c.attrs(path+".roleAttributes", pc.RoleAttributes)}
		switch pc.Type {
		case ziti.PostureCheckOS:
			if len(pc.OperatingSystems) == 0 {
				v.c.bad(path+".operatingSystems", "missing; expected at least one operating system, e.g. [{type: Linux, versions: [\">=5.10.0\"]}]")
			}
			for j, o := range pc.OperatingSystems {
				op := fmt.Sprintf("%s.operatingSystems[%d]", path, j)
				v.c.oneOf(op+".type", o.Type, ziti.OperatingSystems, "an operating system")
				for k, ver := range o.Versions {
					if ver == "" || strings.TrimSpace(ver) != ver || strings.IndexAny(ver, "0123456789") < 0 {
						v.c.bad(fmt.Sprintf("%s.versions[%d]", op, k), "%q is not a version or version range; expected e.g. \">=5.10.0\"", ver)
					}
				}
				out.OperatingSystems = append(out.OperatingSystems, ziti.OperatingSystem{Type: o.Type, Versions: slices.Clone(o.Versions)})
			}
			if len(pc.MACAddresses) > 0 {
				v.c.bad(path+".macAddresses", "only for type MAC; remove it, or set type: MAC")
			}
		case ziti.PostureCheckMAC:
			if len(pc.MACAddresses) == 0 {
				v.c.bad(path+".macAddresses", "missing; expected at least one MAC address, e.g. [\"aa:bb:cc:dd:ee:ff\"]")
			}
			seen := map[string]bool{}
			for j, m := range pc.MACAddresses {
				mp := fmt.Sprintf("%s.macAddresses[%d]", path, j)
				n, ok := ziti.NormalizeMAC(m)
				switch {
				case !ok:
					v.c.bad(mp, "%q is not a MAC address; expected 12 hex digits such as aa:bb:cc:dd:ee:ff", m)
				case seen[n]:
					v.c.bad(mp, "%q is listed twice; remove one", m)
				default:
					seen[n] = true
					out.MACAddresses = append(out.MACAddresses, n)
				}
			}
			if len(pc.OperatingSystems) > 0 {
				v.c.bad(path+".operatingSystems", "only for type OS; remove it, or set type: OS")
			}
		default:
			v.c.oneOf(path+".type", pc.Type, []string{ziti.PostureCheckOS, ziti.PostureCheckMAC}, "a posture check type")
		}
		if okName {
			v.postureNames[pc.Name] = true
			v.p.PostureChecks = append(v.p.PostureChecks, out)
			v.declare(KindPostureCheck, pc.Name, path)
		}
		for _, a := range out.RoleAttributes {
			v.postureAttrs[a] = true
		}
	}
}

// configs checks the named configs.
func (v *validation) configs(list []ConfigSpec) {
	for i, cf := range list {
		v.addConfig(fmt.Sprintf("configs[%d]", i), cf.Name, cf.Intercept, cf.Host, true)
	}
}

// addConfig checks a config, named or inline; register (false when its inline service's name is bad) declares
// it.
func (v *validation) addConfig(path, name string, in *InterceptSpec, h *HostSpec, register bool) {
	okName := register && v.cfgNames.check(path+".name", name)
	if okName && v.extConfigs[name] {
		v.c.bad(path+".name", "%q is also listed in external.configs; remove it from one of them", name)
	}
	var cfg ziti.Config
	switch {
	case in != nil && h != nil:
		v.c.bad(path, "a config is either intercept or host, not both; declare two configs")
		return
	case in != nil:
		cfg = ziti.Config{Name: name, ConfigTypeName: ziti.ConfigTypeIntercept, Data: v.c.intercept(path+".intercept", in)}
	case h != nil:
		cfg = ziti.Config{Name: name, ConfigTypeName: ziti.ConfigTypeHost, Data: v.c.host(path+".host", h)}
	default:
		v.c.bad(path, "empty config; expected intercept: or host:")
		return
	}
	if okName {
		v.cfgType[name] = cfg.ConfigTypeName
		v.p.Configs = append(v.p.Configs, cfg)
		v.declare(KindConfig, name, path)
	}
}

// services checks the services, their inline configs and the configs they name.
func (v *validation) services(list []ServiceSpec) {
	svcNames := v.c.namer("service")
	v.serviceNames = map[string]bool{}
	for n := range v.extServices {
		v.serviceNames[n] = true
	}
	var services []ziti.Service
	for i, s := range list {
		path := fmt.Sprintf("services[%d]", i)
		okName := svcNames.check(path+".name", s.Name)
		if okName && v.extServices[s.Name] {
			v.c.bad(path+".name", "%q is also listed in external.services; remove it from one of them", s.Name)
		}
		out := ziti.Service{Name: s.Name, RoleAttributes: v.c.attrs(path+".roleAttributes", s.RoleAttributes), EncryptionRequired: true,
			TerminatorStrategy: ziti.DefaultTerminatorStrategy}
		if s.EncryptionRequired != nil {
			out.EncryptionRequired = *s.EncryptionRequired
		}
		if s.TerminatorStrategy != "" && v.c.oneOf(path+".terminatorStrategy", s.TerminatorStrategy, TerminatorStrategies, "a terminator strategy") {
			out.TerminatorStrategy = s.TerminatorStrategy
		}
		if s.Intercept != nil {
			n := s.Name + InlineInterceptSuffix
			v.addConfig(path, n, s.Intercept, nil, okName)
			out.Configs = append(out.Configs, n)
		}
		if s.Host != nil {
			n := s.Name + InlineHostSuffix
			v.addConfig(path, n, nil, s.Host, okName)
			out.Configs = append(out.Configs, n)
		}
		byType := map[string]string{}
		for _, n := range out.Configs {
			byType[v.cfgType[n]] = n
		}
		for j, n := range s.Configs {
			cp := fmt.Sprintf("%s.configs[%d]", path, j)
			t, ours := v.cfgType[n]
			switch {
			case !ours && !v.extConfigs[n]:
				v.c.bad(cp, "no config is named %q in this file; declare it under configs:, or list it in external.configs if it is made elsewhere", n)
				continue
			case slices.Contains(out.Configs, n):
				v.c.bad(cp, "%q is listed twice; remove one", n)
				continue
			case ours && byType[t] != "":
				v.c.bad(cp, "%q is a second %s config of this service (%s is the first); a service has at most one config of each type", n, t, byType[t])
				continue
			}
			if ours {
				byType[t] = n
			}
			out.Configs = append(out.Configs, n)
		}
		for _, a := range out.RoleAttributes {
			v.serviceAttrs[a] = true
		}
		if okName {
			v.serviceNames[s.Name] = true
			services = append(services, out)
			v.declare(KindService, s.Name, path)
		}
	}
	v.p.Services = services
}

// policies checks the service, edge router and service edge router policies: every role they name must be given
// or declared in the file, or listed as external.
func (v *validation) policies(f *File) {
	v.idRoles = &roleSet{kind: RefIdentity, attrs: v.identityAttrs, templates: v.templates,
		attrHelp: "give it to identities (identities[].roleAttributes, identityRules[].roleAttributes), or list it in external.identityRoles if it is given elsewhere"}
	v.svcRoles = &roleSet{kind: "service", attrs: v.serviceAttrs, names: v.serviceNames,
		attrHelp: "give it to a service (services[].roleAttributes), or list it in external.serviceRoles",
		nameHelp: "declare it under services:, or list it in external.services if it is made elsewhere"}
	v.pcRoles = &roleSet{kind: "posture check", attrs: v.postureAttrs, names: mergeSets(v.postureNames, v.extPosture),
		attrHelp: "give it to a posture check (postureChecks[].roleAttributes), or list it in external.postureCheckRoles",
		nameHelp: "declare it under postureChecks:, or list it in external.postureChecks"}
	v.routerRoles = &roleSet{kind: RefRouter}

	section(v, "servicePolicies", KindServicePolicy, v.c.namer("service policy"), f.ServicePolicies, &v.p.ServicePolicies,
		func(sp ServicePolicySpec) string { return sp.Name }, func(path string, sp ServicePolicySpec) ziti.ServicePolicy {
			v.c.oneOf(path+".type", sp.Type, []string{ziti.PolicyDial, ziti.PolicyBind}, "a service policy type")
			out := ziti.ServicePolicy{Name: sp.Name, Type: sp.Type, Semantic: semanticOf(v.c, path+".semantic", sp.Semantic),
				IdentityRoles:     v.c.roles(path+".identityRoles", sp.IdentityRoles, v.idRoles, true, v.p),
				ServiceRoles:      v.c.roles(path+".serviceRoles", sp.ServiceRoles, v.svcRoles, true, v.p),
				PostureCheckRoles: v.c.roles(path+".postureCheckRoles", sp.PostureCheckRoles, v.pcRoles, false, v.p),
			}
			v.dialers = append(v.dialers, out.IdentityRoles...)
			return out
		})
	v.erpNames = v.c.namer("edge router policy")
	section(v, "edgeRouterPolicies", KindEdgeRouterPolicy, v.erpNames, f.EdgeRouterPolicies, &v.p.EdgeRouterPolicies,
		func(e EdgeRouterPolicySpec) string { return e.Name }, func(path string, e EdgeRouterPolicySpec) ziti.EdgeRouterPolicy {
			return ziti.EdgeRouterPolicy{Name: e.Name, Semantic: semanticOf(v.c, path+".semantic", e.Semantic),
				IdentityRoles:   v.c.roles(path+".identityRoles", e.IdentityRoles, v.idRoles, true, v.p),
				EdgeRouterRoles: v.c.roles(path+".edgeRouterRoles", e.EdgeRouterRoles, v.routerRoles, true, v.p),
			}
		})
	v.serpNames = v.c.namer("service edge router policy")
	section(v, "serviceEdgeRouterPolicies", KindServiceEdgeRouterPolicy, v.serpNames, f.ServiceEdgeRouterPolicies, &v.p.ServiceEdgeRouterPolicies,
		func(e ServiceEdgeRouterPolicySpec) string { return e.Name }, func(path string, e ServiceEdgeRouterPolicySpec) ziti.ServiceEdgeRouterPolicy {
			return ziti.ServiceEdgeRouterPolicy{Name: e.Name, Semantic: semanticOf(v.c, path+".semantic", e.Semantic),
				ServiceRoles:    v.c.roles(path+".serviceRoles", e.ServiceRoles, v.svcRoles, true, v.p),
				EdgeRouterRoles: v.c.roles(path+".edgeRouterRoles", e.EdgeRouterRoles, v.routerRoles, true, v.p),
			}
		})
}

// section checks the objects of one section of the file (key, e.g. "edgeRouterPolicies"): each one's name
// (names: valid and unique), then the rest of it (check, which returns what it becomes). Those with a good name
// are added to into and declared as kind.
func section[S, T any](v *validation, key, kind string, names *namer, items []S, into *[]T, name func(S) string, check func(path string, s S) T) {
	for i, s := range items {
		path := fmt.Sprintf("%s[%d]", key, i)
		n := name(s)
		okName := names.check(path+".name", n)
		out := check(path, s)
		if okName {
			*into = append(*into, out)
			v.declare(kind, n, path)
		}
	}
}

// defaults checks the default router policies and adds them: the identities of every service policy may use the
// routers, for every service of the file.
func (v *validation) defaults(d *Defaults) {
	if d == nil {
		return
	}
	path := "defaults"
	if d.EdgeRouterPolicy == "" && d.ServiceEdgeRouterPolicy == "" {
		v.c.bad(path, "names neither edgeRouterPolicy nor serviceEdgeRouterPolicy; name at least one, or remove defaults")
	}
	routers := v.c.roles(path+".edgeRouterRoles", d.EdgeRouterRoles, v.routerRoles, true, v.p)
	if d.EdgeRouterPolicy != "" && v.erpNames.check(path+".edgeRouterPolicy", d.EdgeRouterPolicy) {
		ids := UniqueSorted(v.dialers)
		if slices.Contains(ids, "#all") {
			ids = []string{"#all"}
		}
		if len(ids) == 0 {
			v.c.bad(path+".edgeRouterPolicy", "no service policy names an identity, so the default edge router policy would grant nothing; add service policies or remove it")
		}
		v.p.EdgeRouterPolicies = append(v.p.EdgeRouterPolicies, ziti.EdgeRouterPolicy{Name: d.EdgeRouterPolicy, Semantic: ziti.SemanticAnyOf,
			IdentityRoles: ids, EdgeRouterRoles: routers})
		v.declare(KindEdgeRouterPolicy, d.EdgeRouterPolicy, path+".edgeRouterPolicy")
	}
	if d.ServiceEdgeRouterPolicy != "" && v.serpNames.check(path+".serviceEdgeRouterPolicy", d.ServiceEdgeRouterPolicy) {
		var svcs []string
		for _, s := range v.p.Services {
			svcs = append(svcs, "@"+s.Name)
		}
		if len(svcs) == 0 {
			v.c.bad(path+".serviceEdgeRouterPolicy", "the file declares no services, so the default service edge router policy would grant nothing; remove it")
		}
		v.p.ServiceEdgeRouterPolicies = append(v.p.ServiceEdgeRouterPolicies, ziti.ServiceEdgeRouterPolicy{Name: d.ServiceEdgeRouterPolicy,
			Semantic: ziti.SemanticAnyOf, ServiceRoles: svcs, EdgeRouterRoles: routers})
		v.declare(KindServiceEdgeRouterPolicy, d.ServiceEdgeRouterPolicy, path+".serviceEdgeRouterPolicy")
	}
}

// report returns the policy, or every problem: structural ones, then the semantic ones not caused by them, in
// file order.
func (v *validation) report(name string, w *walker) (*Policy, error) {
	all := slices.Clone(w.problems)
	for _, pr := range v.c.problems {
		if !v.c.structural(pr.Path) {
			all = append(all, pr)
		}
	}
	if len(all) > 0 {
		sort.SliceStable(all, func(i, j int) bool { return all[i].Line < all[j].Line })
		return nil, &Error{File: name, Problems: all}
	}
	return v.p, nil
}

// ExternalKind is the key under which Policy.Where records an object listed in external.
func ExternalKind(kind string) string { return "external " + kind }

func braces(vars []string) string {
	if len(vars) == 0 {
		return "(none: the pattern has no placeholders)"
	}
	out := make([]string, len(vars))
	for i, v := range vars {
		out[i] = "{" + v + "}"
	}
	return strings.Join(out, ", ")
}

func mergeSets(a, b map[string]bool) map[string]bool {
	out := make(map[string]bool, len(a)+len(b))
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

// UniqueSorted is s sorted, without repeats (s is not changed).
func UniqueSorted(s []string) []string {
	out := slices.Clone(s)
	sort.Strings(out)
	return slices.Compact(out)
}
