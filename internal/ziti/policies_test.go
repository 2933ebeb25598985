package ziti

import (
	"slices"
	"testing"
)

// TestPolicyObjectsRoundTrip drives every new call against the real controller: configs, services, posture
// checks, the three policy kinds, identity role attributes, edge routers and the policy advisor.
func TestPolicyObjectsRoundTrip(t *testing.T) {
	c, counter := login(t)
	ctx := ctxFor(t)
	sfx := suffix(t)
	tags := map[string]any{"ziti-bootstrap": "adapter-test-" + sfx}
	w := &writeMeter{c: counter}
	var cleanup []func()
	t.Cleanup(func() {
		for i := len(cleanup) - 1; i >= 0; i-- {
			cleanup[i]()
		}
	})

	types, err := c.ListConfigTypes(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	typeID := map[string]string{}
	for _, ct := range types {
		typeID[ct.Name] = ct.ID
	}
	if typeID[ConfigTypeIntercept] == "" || typeID[ConfigTypeHost] == "" {
		t.Fatalf("config types %v", types)
	}

	// Config: data comes back equal (numbers as json.Number), update replaces data.
	icpt := Config{Name: "t-" + sfx + "-icpt", ConfigTypeID: typeID[ConfigTypeIntercept], Tags: tags, Data: map[string]any{
		"protocols": []string{"tcp"}, "addresses": []string{"sensor.iot"},
		"portRanges": []map[string]int{{"low": 8883, "high": 8883}}, "sourceIp": "$src_ip:$src_port",
		"allowedSourceAddresses": []string{"10.0.0.0/24"},
	}}
	icpt.ID, err = c.CreateConfig(ctx, icpt)
	if err != nil {
		t.Fatal(err)
	}
	cleanup = append(cleanup, func() { _ = c.DeleteConfig(ctx, icpt.ID) })
	got, err := c.ListConfigs(ctx, FilterEq("name", icpt.Name))
	if err != nil || len(got) != 1 {
		t.Fatalf("list config: %v %v", got, err)
	}
	if !EqualJSON(got[0].Data, icpt.Data) || got[0].ConfigTypeName != ConfigTypeIntercept || got[0].Tags["ziti-bootstrap"] != tags["ziti-bootstrap"] {
		t.Fatalf("config round trip: %+v", got[0])
	}
	icpt.Data["portRanges"] = []map[string]int{{"low": 1883, "high": 1884}}
	if err := c.UpdateConfig(ctx, icpt.ID, icpt); err != nil {
		t.Fatal(err)
	}
	got, _ = c.ListConfigs(ctx, FilterEq("name", icpt.Name))
	if !EqualJSON(got[0].Data, icpt.Data) {
		t.Fatalf("config update: %+v", got[0].Data)
	}

	// Service: configs by id, encryptionRequired false survives a full update.
	svc := Service{Name: "t-" + sfx + "-svc", Configs: []string{icpt.ID}, RoleAttributes: []string{"b", "a"}, EncryptionRequired: true, Tags: tags}
	svc.ID, err = c.CreateService(ctx, svc)
	if err != nil {
		t.Fatal(err)
	}
	cleanup = append(cleanup, func() { _ = c.DeleteService(ctx, svc.ID) })
	svc.EncryptionRequired = false
	if err := c.UpdateService(ctx, svc.ID, svc); err != nil {
		t.Fatal(err)
	}
	if s := onlyNamed(t, ctx, svc.Name, c.ListServices); s.EncryptionRequired || !slices.Equal(s.Configs, []string{icpt.ID}) || !slices.Equal(s.RoleAttributes, []string{"a", "b"}) ||
		s.TerminatorStrategy != DefaultTerminatorStrategy {
		t.Fatalf("service %+v", s)
	}

	// Posture checks of both supported types; MACs are normalised by the controller.
	osc := PostureCheck{Name: "t-" + sfx + "-os", Type: PostureCheckOS, RoleAttributes: []string{"os"}, Tags: tags,
		OperatingSystems: []OperatingSystem{{Type: "Linux", Versions: []string{">=5.0.0"}}}}
	osc.ID, err = c.CreatePostureCheck(ctx, osc)
	if err != nil {
		t.Fatal(err)
	}
	cleanup = append(cleanup, func() { _ = c.DeletePostureCheck(ctx, osc.ID) })
	mac := PostureCheck{Name: "t-" + sfx + "-mac", Type: PostureCheckMAC, MACAddresses: []string{"AA:BB:CC:DD:EE:FF"}, Tags: tags}
	mac.ID, err = c.CreatePostureCheck(ctx, mac)
	if err != nil {
		t.Fatal(err)
	}
	cleanup = append(cleanup, func() { _ = c.DeletePostureCheck(ctx, mac.ID) })
	mac.MACAddresses = []string{"00-11-22-33-44-55"}
	if err := c.UpdatePostureCheck(ctx, mac.ID, mac); err != nil {
		t.Fatal(err)
	}
	pcs, err := c.ListPostureChecks(ctx, `name contains "t-`+sfx+`"`)
	if err != nil || len(pcs) != 2 {
		t.Fatalf("list posture checks: %v %v", pcs, err)
	}
	for _, pc := range pcs {
		switch pc.Name {
		case osc.Name:
			if pc.Type != PostureCheckOS || len(pc.OperatingSystems) != 1 || pc.OperatingSystems[0].Type != "Linux" || !slices.Equal(pc.RoleAttributes, []string{"os"}) {
				t.Fatalf("OS check %+v", pc)
			}
		case mac.Name:
			if n, _ := NormalizeMAC("00-11-22-33-44-55"); pc.Type != PostureCheckMAC || !slices.Equal(pc.MACAddresses, []string{n}) {
				t.Fatalf("MAC check %+v", pc)
			}
		}
	}

	// Identities and their attributes; only role attributes and tags are patched.
	in := Identity{Name: "t-" + sfx + "-dev", ExternalID: "spiffe://zb.test/t/" + sfx, RoleAttributes: []string{"hand"}, Tags: map[string]any{"keep": "me"}}
	in.ID, err = c.CreateIdentity(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	cleanup = append(cleanup, func() { _ = c.DeleteIdentity(ctx, in.ID) })
	if err := c.SetIdentityRoleAttributes(ctx, in.ID, []string{"hand", "seg-" + sfx}, map[string]any{"keep": "me", "managed": "seg-" + sfx}); err != nil {
		t.Fatal(err)
	}
	gotID, err := c.GetIdentity(ctx, in.ID)
	if err != nil || !slices.Equal(gotID.RoleAttributes, []string{"hand", "seg-" + sfx}) || gotID.Tags["keep"] != "me" || gotID.ExternalID != in.ExternalID {
		t.Fatalf("identity %+v %v", gotID, err)
	}
	outsider := Identity{Name: "t-" + sfx + "-out", RoleAttributes: []string{"elsewhere"}}
	outsider.ID, err = c.CreateIdentity(ctx, outsider)
	if err != nil {
		t.Fatal(err)
	}
	cleanup = append(cleanup, func() { _ = c.DeleteIdentity(ctx, outsider.ID) })

	// Policies: "@id" roles are listed as "@name" too.
	routers, err := c.ListEdgeRouters(ctx, "")
	if err != nil || len(routers) == 0 {
		t.Fatalf("routers %v %v", routers, err)
	}
	sp := ServicePolicy{Name: "t-" + sfx + "-dial", Type: PolicyDial, Semantic: SemanticAllOf, Tags: tags,
		IdentityRoles: []string{"#seg-" + sfx}, ServiceRoles: []string{"@" + svc.ID}, PostureCheckRoles: []string{"@" + osc.ID}}
	sp.ID, err = c.CreateServicePolicy(ctx, sp)
	if err != nil {
		t.Fatal(err)
	}
	cleanup = append(cleanup, func() { _ = c.DeleteServicePolicy(ctx, sp.ID) })
	if g := onlyNamed(t, ctx, sp.Name, c.ListServicePolicies); g.Type != PolicyDial || g.Semantic != SemanticAllOf || !slices.Equal(g.ServiceRoleNames, []string{"@" + svc.Name}) ||
		!slices.Equal(g.ServiceRoles, []string{"@" + svc.ID}) || !slices.Equal(g.PostureCheckRoleNames, []string{"@" + osc.Name}) ||
		!slices.Equal(g.IdentityRoleNames, []string{"#seg-" + sfx}) {
		t.Fatalf("service policy %+v", g)
	}
	erp := EdgeRouterPolicy{Name: "t-" + sfx + "-erp", IdentityRoles: []string{"#seg-" + sfx}, EdgeRouterRoles: []string{"@" + routers[0].ID}, Tags: tags}
	erp.ID, err = c.CreateEdgeRouterPolicy(ctx, erp)
	if err != nil {
		t.Fatal(err)
	}
	cleanup = append(cleanup, func() { _ = c.DeleteEdgeRouterPolicy(ctx, erp.ID) })
	erps, err := c.ListEdgeRouterPolicies(ctx, FilterEq("name", erp.Name))
	if err != nil || len(erps) != 1 || !slices.Equal(erps[0].EdgeRouterRoleNames, []string{"@" + routers[0].Name}) || erps[0].Semantic != SemanticAnyOf {
		t.Fatalf("edge router policy %+v %v", erps, err)
	}
	erp.EdgeRouterRoles = []string{"#all"}
	if err := c.UpdateEdgeRouterPolicy(ctx, erp.ID, erp); err != nil {
		t.Fatal(err)
	}
	serp := ServiceEdgeRouterPolicy{Name: "t-" + sfx + "-serp", ServiceRoles: []string{"@" + svc.ID}, EdgeRouterRoles: []string{"#all"}, Tags: tags}
	serp.ID, err = c.CreateServiceEdgeRouterPolicy(ctx, serp)
	if err != nil {
		t.Fatal(err)
	}
	cleanup = append(cleanup, func() { _ = c.DeleteServiceEdgeRouterPolicy(ctx, serp.ID) })
	serps, err := c.ListServiceEdgeRouterPolicies(ctx, FilterEq("name", serp.Name))
	if err != nil || len(serps) != 1 || !slices.Equal(serps[0].ServiceRoleNames, []string{"@" + svc.Name}) {
		t.Fatalf("service edge router policy %+v %v", serps, err)
	}

	// The controller's advisor: the identity in the segment may dial, the outsider may not.
	adv, err := c.PolicyAdvice(ctx, in.ID, svc.ID)
	if err != nil || !adv.DialAllowed || adv.BindAllowed || adv.ServiceRouterCount == 0 {
		t.Fatalf("advice for the member: %+v %v", adv, err)
	}
	adv, err = c.PolicyAdvice(ctx, outsider.ID, svc.ID)
	if err != nil || adv.DialAllowed {
		t.Fatalf("advice for the outsider: %+v %v", adv, err)
	}
	before := w.delta()
	if before == 0 {
		t.Fatal("writes were not counted")
	}
	// Duplicate names are refused.
	if _, err := c.CreateServicePolicy(ctx, sp); err == nil {
		t.Fatal("duplicate service policy name accepted")
	}
}

func TestNormalizeMAC(t *testing.T) {
	for in, want := range map[string]string{
		"AA:BB:CC:DD:EE:FF": "aabbccddeeff", "00-11-22-33-44-55": "001122334455", "0011.2233.4455": "001122334455",
		"aabbccddeeff": "aabbccddeeff", "aa:bb": "", "zz:bb:cc:dd:ee:ff": "", "aabbccddeeff00": "",
	} {
		got, ok := NormalizeMAC(in)
		if ok != (want != "") || (ok && got != want) {
			t.Errorf("NormalizeMAC(%q) = %q, %v", in, got, ok)
		}
	}
}
