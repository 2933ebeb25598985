package ziti

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// hardNames are object names the controller's filter grammar must be given quoted its own way: JSON's escapes
// (\u0026 for &, \u003c for <) made the controller answer "HTTP 400 INVALID_FILTER".
var hardNames = []string{`R&D-kc`, `<tag>`, `say "hi"`, `it's`, `back\slash`, `back\nslash`, `ends\`, `Ünïcødé-日本-🙂`, "tab\there"}

// Every quoted name is a literal of the grammar (only its escapes, no \u) that the controller reads back as
// the name, or FilterEq falls back to a broader filter the caller narrows.
func TestQuoteIsZitiQL(t *testing.T) {
	for _, n := range hardNames {
		q := Quote(n)
		if strings.Contains(q, `\u`) || !strings.HasPrefix(q, `"`) || !strings.HasSuffix(q, `"`) {
			t.Errorf("Quote(%q) = %s", n, q)
		}
		f := FilterEq("name", n)
		switch {
		case Exact(n) && f != "name = "+q:
			t.Errorf("FilterEq(%q) = %s; want an equality", n, f)
		case !Exact(n) && !strings.HasPrefix(f, "name contains "):
			t.Errorf("FilterEq(%q) = %s; want a broader contains filter", n, f)
		}
	}
	for n, exact := range map[string]bool{`R&D`: true, `a"b`: true, `a\b`: true, "a\nb": true, `a\nb`: false, `a\\b`: false, "a\x01b": false} {
		if Exact(n) != exact {
			t.Errorf("Exact(%q) = %v, want %v", n, !exact, exact)
		}
	}
	if got := FilterEq("name", `a"b\c`); got != `name = "a\"b\\c"` {
		t.Errorf("FilterEq = %s", got)
	}
}

// Against the real controller: an object of each kind named with each hard name is found by FilterEq (and
// identities by FilterIn), with no INVALID_FILTER.
func TestFilterFindsHardNamesOfEveryKind(t *testing.T) {
	c, _ := login(t)
	ctx := ctxFor(t)
	sfx := suffix(t)
	types, err := c.ListConfigTypes(ctx, FilterEq("name", ConfigTypeHost))
	if err != nil || len(types) != 1 {
		t.Fatalf("config type %s: %v %v", ConfigTypeHost, types, err)
	}
	type kind struct {
		name   string
		create func(name string, i int) (string, error)
		list   func(filter string) ([]string, error)
		del    func(id string) error
	}
	kinds := []kind{
		{"identity", func(n string, _ int) (string, error) { return c.CreateIdentity(ctx, Identity{Name: n}) },
			namesOf(ctx, c.ListIdentities, func(x Identity) string { return x.Name }), func(id string) error { return c.DeleteIdentity(context.Background(), id) }},
		{"service", func(n string, _ int) (string, error) { return c.CreateService(ctx, Service{Name: n}) },
			namesOf(ctx, c.ListServices, func(x Service) string { return x.Name }), func(id string) error { return c.DeleteService(context.Background(), id) }},
		{"config", func(n string, _ int) (string, error) {
			return c.CreateConfig(ctx, Config{Name: n, ConfigTypeID: types[0].ID, Data: map[string]any{"protocol": "tcp", "address": "localhost", "port": 80}})
		}, namesOf(ctx, c.ListConfigs, func(x Config) string { return x.Name }), func(id string) error { return c.DeleteConfig(context.Background(), id) }},
		{"service policy", func(n string, _ int) (string, error) {
			return c.CreateServicePolicy(ctx, ServicePolicy{Name: n, Type: PolicyDial})
		}, namesOf(ctx, c.ListServicePolicies, func(x ServicePolicy) string { return x.Name }), func(id string) error { return c.DeleteServicePolicy(context.Background(), id) }},
		{"edge router policy", func(n string, _ int) (string, error) { return c.CreateEdgeRouterPolicy(ctx, EdgeRouterPolicy{Name: n}) },
			namesOf(ctx, c.ListEdgeRouterPolicies, func(x EdgeRouterPolicy) string { return x.Name }), func(id string) error { return c.DeleteEdgeRouterPolicy(context.Background(), id) }},
		{"service edge router policy", func(n string, _ int) (string, error) {
			return c.CreateServiceEdgeRouterPolicy(ctx, ServiceEdgeRouterPolicy{Name: n})
		}, namesOf(ctx, c.ListServiceEdgeRouterPolicies, func(x ServiceEdgeRouterPolicy) string { return x.Name }), func(id string) error { return c.DeleteServiceEdgeRouterPolicy(context.Background(), id) }},
		{"posture check", func(n string, _ int) (string, error) {
			return c.CreatePostureCheck(ctx, PostureCheck{Name: n, Type: PostureCheckMAC, MACAddresses: []string{"AA:BB:CC:DD:EE:FF"}})
		}, namesOf(ctx, c.ListPostureChecks, func(x PostureCheck) string { return x.Name }), func(id string) error { return c.DeletePostureCheck(context.Background(), id) }},
		{"auth policy", func(n string, _ int) (string, error) {
			return c.CreateAuthPolicy(ctx, AuthPolicy{Name: n, PrimaryUpdbAllowed: true, PrimaryUpdbMaxAttempts: 5})
		}, namesOf(ctx, c.ListAuthPolicies, func(x AuthPolicy) string { return x.Name }), func(id string) error { return c.DeleteAuthPolicy(context.Background(), id) }},
		{"external JWT signer", func(n string, i int) (string, error) {
			key := newCert(t, nil, fmt.Sprintf("zb filter %s %d", sfx, i), nil, true)
			return c.CreateExtJWTSigner(ctx, ExtJWTSigner{Name: n, Issuer: fmt.Sprintf("https://idp.zb.test/%s/%d/%s", sfx, i, n), Audience: "ziti",
				CertPEM: key.pem(), Kid: fmt.Sprintf("kid-%s-%d", sfx, i), Enabled: true})
		}, namesOf(ctx, c.ListExtJWTSigners, func(x ExtJWTSigner) string { return x.Name }), func(id string) error { return c.DeleteExtJWTSigner(context.Background(), id) }},
	}
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			var made []string
			for i, base := range hardNames {
				n := base + " " + sfx
				id, err := k.create(n, i)
				if err != nil {
					t.Errorf("create %s %q: %v", k.name, n, err)
					continue
				}
				t.Cleanup(func() { _ = k.del(id) })
				made = append(made, n)
				got, err := k.list(FilterEq("name", n))
				if err != nil || !slices.Contains(got, n) {
					t.Errorf("list %s by FilterEq(name, %q) = %s: %q, %v; want it found", k.name, n, FilterEq("name", n), got, err)
				}
			}
			if got, err := k.list(FilterIn("name", made)); err != nil || len(got) < len(made) {
				t.Errorf("list %s by FilterIn: %q, %v; want all %d", k.name, got, err, len(made))
			}
		})
	}
}

// namesOf returns a lister of names: what list finds with a filter, by name.
func namesOf[T any](ctx context.Context, list func(context.Context, string) ([]T, error), name func(T) string) func(string) ([]string, error) {
	return func(filter string) ([]string, error) {
		l, err := list(ctx, filter)
		out := make([]string, len(l))
		for i, x := range l {
			out[i] = name(x)
		}
		return out, err
	}
}
