package ziti

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/go-openapi/runtime"
	"github.com/openziti/edge-api/rest_model"
)

// The one-pass decoding of list pages gives what the generated client's decoding gives, on the controller's
// own answers: a config whose data holds numbers, lists and objects, a service with a config and attributes,
// each policy kind, and the identities (authenticators, environment, SDK info, …).
func TestListPagesDecodeAsTheGeneratedClientDoes(t *testing.T) {
	c, _ := login(t)
	ctx := ctxFor(t)
	sfx := suffix(t)
	name := "t-" + sfx + "-decode"
	tags := map[string]any{"ziti-bootstrap": "decode-test-" + sfx, "n": 3}
	types, err := c.ListConfigTypes(ctx, FilterEq("name", ConfigTypeIntercept))
	if err != nil || len(types) != 1 {
		t.Fatalf("config type %s: %v %v", ConfigTypeIntercept, types, err)
	}
	cfg, err := c.CreateConfig(ctx, Config{Name: name, ConfigTypeID: types[0].ID, Tags: tags, Data: map[string]any{
		"protocols": []string{"tcp", "udp"}, "addresses": []string{"sensor.iot", "10.0.0.0/24"},
		"portRanges": []map[string]int{{"low": 8883, "high": 8884}}, "dialOptions": map[string]any{"connectTimeoutSeconds": 7},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.DeleteConfig(ctx, cfg) })
	svc, err := c.CreateService(ctx, Service{Name: name, Configs: []string{cfg}, RoleAttributes: []string{"a", "b"}, EncryptionRequired: true, Tags: tags})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.DeleteService(ctx, svc) })
	for _, p := range []struct {
		create func() (string, error)
		remove func(context.Context, string) error
	}{
		{func() (string, error) {
			return c.CreateServicePolicy(ctx, ServicePolicy{Name: name, Type: PolicyDial, IdentityRoles: []string{"#x"}, ServiceRoles: []string{"@" + svc}, Tags: tags})
		}, c.DeleteServicePolicy},
		{func() (string, error) {
			return c.CreateEdgeRouterPolicy(ctx, EdgeRouterPolicy{Name: name, IdentityRoles: []string{"#x"}, EdgeRouterRoles: []string{"#all"}, Tags: tags})
		}, c.DeleteEdgeRouterPolicy},
		{func() (string, error) {
			return c.CreateServiceEdgeRouterPolicy(ctx, ServiceEdgeRouterPolicy{Name: name, ServiceRoles: []string{"@" + svc}, EdgeRouterRoles: []string{"#all"}, Tags: tags})
		}, c.DeleteServiceEdgeRouterPolicy},
	} {
		id, err := p.create()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = p.remove(ctx, id) })
	}

	for _, k := range []struct {
		path   string
		filter string
		env    func() any // a fresh envelope of the kind
	}{
		{"configs", FilterEq("name", name), func() any { return new(rest_model.ListConfigsEnvelope) }},
		{"services", FilterEq("name", name), func() any { return new(rest_model.ListServicesEnvelope) }},
		{"service-policies", FilterEq("name", name), func() any { return new(rest_model.ListServicePoliciesEnvelope) }},
		{"edge-router-policies", FilterEq("name", name), func() any { return new(rest_model.ListEdgeRouterPoliciesEnvelope) }},
		{"service-edge-router-policies", FilterEq("name", name), func() any { return new(rest_model.ListServiceEdgeRouterPoliciesEnvelope) }},
		{"identities", "", func() any { return new(rest_model.ListIdentitiesEnvelope) }},
	} {
		body := rawList(t, c, k.path, k.filter)
		generated, onePass := k.env(), k.env()
		if err := runtime.JSONConsumer().Consume(bytes.NewReader(body), generated); err != nil {
			t.Fatalf("%s: generated decoding: %v", k.path, err)
		}
		if err := listConsumer(runtime.JSONConsumer()).Consume(bytes.NewReader(body), onePass); err != nil {
			t.Fatalf("%s: one-pass decoding: %v", k.path, err)
		}
		if dataOf(generated).Len() == 0 {
			t.Fatalf("%s: the controller listed nothing: %s", k.path, body)
		}
		if !reflect.DeepEqual(generated, onePass) {
			t.Errorf("%s: the one-pass decoding differs from the generated one\ngenerated: %s\none pass:  %s", k.path, items(generated), items(onePass))
		}
	}
	// and through the client: the answer of a list call comes back as it was created
	if s := onlyNamed(t, ctx, name, c.ListServices); !reflect.DeepEqual(s.Configs, []string{cfg}) || !reflect.DeepEqual(s.RoleAttributes, []string{"a", "b"}) {
		t.Errorf("service %+v", s)
	}
}

// rawList is the controller's answer to GET /edge/management/v1/<path>?filter=… as this client's calls get it.
func rawList(t *testing.T, c *Client, path, filter string) []byte {
	t.Helper()
	if err := c.Login(ctxFor(t)); err != nil {
		t.Fatal(err)
	}
	u := c.URL()
	u.Path += managementPath + "/" + path
	q := url.Values{"limit": {"500"}}
	if filter != "" {
		q.Set("filter", filter)
	}
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctxFor(t), http.MethodGet, u.String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("zt-session", c.sessionToken())
	resp, err := c.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v %s", path, resp.StatusCode, err, body)
	}
	return body
}

// dataOf is the items of a list envelope (its Data).
func dataOf(env any) reflect.Value { return reflect.ValueOf(env).Elem().FieldByName("Data") }

// items shows the items of a list envelope field by field, pointers followed.
func items(env any) string {
	data := dataOf(env)
	var b strings.Builder
	for i := range data.Len() {
		fmt.Fprintf(&b, "\n  %+v", data.Index(i).Elem().Interface())
	}
	return b.String()
}
