package policyfile

import (
	"errors"
	"os"
	"testing"
)

// FuzzParse: the parser never panics, and every rejection is an *Error whose problems each name the file, a
// line inside it, and a message.
func FuzzParse(f *testing.F) {
	if ex, err := os.ReadFile(examplePath); err == nil {
		f.Add(ex)
	}
	for _, s := range []string{
		"", "services: []", "services:\n  - name: a\n    intercept: {protocols: [tcp], addresses: [a], portRanges: [{low: 1, high: 2}]}\n",
		"servicePolicies:\n  - {name: p, type: Dial, identityRoles: ['#all'], serviceRoles: ['@x']}\n",
		"identityRules:\n  - externalId: spiffe://td/{a}/{b}\n    roleAttributes: ['x:{a}']\n",
		"a: &a [x]\nservices: [*a, *a]\n", "configs:\n  - name: c\n    host: {<<: {protocol: tcp}, address: a, port: 1}\n",
		"postureChecks:\n  - {name: m, type: MAC, macAddresses: ['aa:bb:cc:dd:ee:ff']}\n", "defaults: {edgeRouterRoles: ['#all'], edgeRouterPolicy: e}\n",
		"- [\n", "\t", "services:\n  - name: \x01\n", "--- \n--- \n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse("fuzz.yaml", data)
		if err == nil {
			if p == nil {
				t.Fatal("nil policy without error")
			}
			return
		}
		var pe *Error
		if !errors.As(err, &pe) || len(pe.Problems) == 0 {
			t.Fatalf("rejection without located problems: %v", err)
		}
		lines := lineOf(data, len(data))
		for _, pr := range pe.Problems {
			if pr.File != "fuzz.yaml" || pr.Line < 1 || pr.Line > lines || pr.Msg == "" {
				t.Fatalf("problem without a location in the file (%d lines): %+v", lines, pr)
			}
		}
	})
}
