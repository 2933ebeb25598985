package crashtest

import (
	"strings"
	"testing"

	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
)

// TestCrashInPolicies adds the example policy file (POLICIES_FILE, under this test's names) to a converged
// system and kills that apply before each write of the ziti/policies step (20: configs and a posture check,
// services and identities' attributes, then the policies; about a second each). The step writes up to
// policies.DefaultParallel objects of one phase at once, so the write it is killed before is one of that
// phase's, in any order (the writes counted before it still land: exactly the rest is left). The next apply
// leaves exactly the objects the file declares, with the fields of an uninterrupted run, and the identities'
// attributes and tags of one; the one after writes nothing.
func TestCrashInPolicies(t *testing.T) {
	b := newBed(t)
	b.usePolicies()
	b.reset()
	b.mustConverge("apply without a policy file", runOpts{})
	file := b.polFile("iot-segments.yaml", exampleText(b))
	b.crashLoop(t, crashCase{
		prepare:  b.resetPolicies,
		extra:    []string{"--set", "POLICIES_FILE=" + file},
		anyOrder: true,
		check: func(ref steps.Report, want state) bool {
			// 3 services, 2 named and 4 inline configs, 1 posture check, 4 service policies, 2 router policies;
			// and 4 writes of identities' attributes: the hub's and those of the 3 devices the rules match.
			return b.declares(file, want) && len(want.Ziti) == 16 && len(want.Identities) == len(polIdentities) && len(ref.Writes) == 20
		},
	})
}

// reconvergeA is configuration A's policy file: three services (one with a named config), a posture check,
// four service policies, router policies derived from them, a rule and a named identity.
const reconvergeA = `
identityRules:
  - externalId: spiffe://openziti.local/device/{type}/{location}/{name}
    roleAttributes: ["device-type:{type}", "location:{location}", iot-device]
identities:
  - {name: iot-sensor-hub, roleAttributes: [iot-hub]}
postureChecks:
  - {name: iot-linux, type: OS, operatingSystems: [{type: Linux, versions: [">=5.10.0"]}]}
configs:
  - {name: iot-firmware-host, host: {protocol: tcp, address: firmware.internal, port: 443}}
services:
  - name: iot-sensor-data
    roleAttributes: [iot-hosted]
    intercept: {protocols: [tcp], addresses: [sensor-data.iot], portRanges: [{low: 8883, high: 8883}]}
    host: {protocol: tcp, address: 127.0.0.1, port: 8883}
  - name: iot-motion-events
    roleAttributes: [iot-hosted]
    intercept: {protocols: [udp], addresses: [motion.iot], portRanges: [{low: 5683, high: 5683}]}
    host: {protocol: udp, address: 127.0.0.1, port: 5683}
  - {name: iot-firmware, roleAttributes: [iot-hosted], configs: [iot-firmware-host]}
servicePolicies:
  - {name: iot-temperature-dial-sensor-data, type: Dial, identityRoles: ["#device-type:temperature"], serviceRoles: ["@iot-sensor-data"]}
  - {name: iot-motion-dial-events, type: Dial, identityRoles: ["#device-type:motion"], serviceRoles: ["@iot-motion-events"]}
  - {name: iot-devices-dial-firmware, type: Dial, identityRoles: ["#iot-device"], serviceRoles: ["@iot-firmware"], postureCheckRoles: ["@iot-linux"]}
  - {name: iot-hub-bind, type: Bind, identityRoles: ["@iot-sensor-hub"], serviceRoles: ["#iot-hosted"]}
defaults:
  edgeRouterRoles: ["#public"]
  edgeRouterPolicy: iot-endpoints-public-routers
  serviceEdgeRouterPolicy: iot-services-public-routers
`

// reconvergeB are the edits that make configuration B's policy file of A's: the motion service and its policy
// removed, a door-locks service and its policy added, one policy's roles and semantic changed, the named
// config's port and the posture check's versions changed, the rule's and the hub's attributes changed (so the
// derived router policies change too). Each old text occurs in A exactly once.
var reconvergeB = [][2]string{
	{`", iot-device]`, `", iot-endpoint]`},
	{`roleAttributes: [iot-hub]`, `roleAttributes: [iot-hub, iot-broker]`},
	{`versions: [">=5.10.0"]`, `versions: [">=5.15.0"]`},
	{`address: firmware.internal, port: 443}`, `address: firmware.internal, port: 8443}`},
	{`name: iot-motion-events
    roleAttributes: [iot-hosted]
    intercept: {protocols: [udp], addresses: [motion.iot], portRanges: [{low: 5683, high: 5683}]}
    host: {protocol: udp, address: 127.0.0.1, port: 5683}`, `name: iot-door-locks
    roleAttributes: [iot-hosted]
    intercept: {protocols: [tcp], addresses: [doors.iot], portRanges: [{low: 8080, high: 8080}]}
    host: {protocol: tcp, address: 127.0.0.1, port: 8080}`},
	{`type: Dial, identityRoles: ["#device-type:temperature"]`, `type: Dial, semantic: AllOf, identityRoles: ["#device-type:temperature", "#location:kitchen"]`},
	{`{name: iot-motion-dial-events, type: Dial, identityRoles: ["#device-type:motion"], serviceRoles: ["@iot-motion-events"]}`,
		`{name: iot-kitchen-dial-door-locks, type: Dial, identityRoles: ["#location:kitchen"], serviceRoles: ["@iot-door-locks"]}`},
	{`identityRoles: ["#iot-device"]`, `identityRoles: ["#iot-endpoint"]`},
}

// edited is text with each edit's old text (which must occur exactly once) replaced by its new one.
func edited(t *testing.T, text string, edits [][2]string) string {
	for _, e := range edits {
		if n := strings.Count(text, e[0]); n != 1 {
			t.Fatalf("%q occurs %d times in the policy file to edit", e[0], n)
		}
		text = strings.Replace(text, e[0], e[1], 1)
	}
	return text
}

// TestCrashDuringReconvergence converges configuration A, then kills the apply that moves the system to B
// before each of its writes (23, about two seconds each). B changes something in every step that can change:
// the policy file (the edits reconvergeB), one SPIRE entry's TTL and DNS name, the SPIRE CA's identity roles,
// the Keycloak client's redirect URIs, and the claim OpenZiti maps to identities (ZITI_OIDC_CLAIM=ziti_id: a
// user-profile attribute, the client's mapper and the JWT signer change). Before each crash the system is
// brought back to A (an apply of A, checked against A's state after B); the apply after the crash leaves B's
// state as an uninterrupted A→B run does, and the one after writes nothing.
func TestCrashDuringReconvergence(t *testing.T) {
	b := newBed(t)
	b.usePolicies()
	aFile, bFile := b.polFile("a.yaml", reconvergeA), b.polFile("b.yaml", edited(t, reconvergeA, reconvergeB))
	a := []string{"--set", "POLICIES_FILE=" + aFile}
	bArgs := []string{
		"--set", "POLICIES_FILE=" + bFile,
		"--set", "SPIRE_ENTRIES_FILE=" + b.writeEntries("entries-b.yaml", 7200, "zbcrash-router-b"),
		"--set", "ZITI_SPIRE_CA_ROLES=spire-workloads,zbcrash-b",
		"--set", "KEYCLOAK_REDIRECT_URIS=http://localhost:20314/auth/callback,https://zbcrash-b.example/callback",
		"--set", "ZITI_OIDC_CLAIM=ziti_id",
	}
	b.reset()
	b.mustConverge("apply of A from nothing", runOpts{}, a...)
	fresh := b.state()
	// A after B is A, but for the user-profile attribute of B's claim: keycloak/realm declares the attributes it
	// needs and never removes one (that would drop every user's value of it).
	b.mustConverge("apply of B", runOpts{}, bArgs...)
	b.mustConverge("apply of A after B", runOpts{}, a...)
	wantA := b.state()
	b.declares(aFile, wantA)
	butProfile := wantA
	butProfile.Profile = fresh.Profile
	diffStates(t, "A after B (user profile aside)", fresh, butProfile)
	t.Logf("user profile of A after B: %v", wantA.Profile)
	b.crashLoop(t, crashCase{
		prepare: func() {
			b.t.Helper()
			b.mustConverge("apply of A", runOpts{}, a...)
			diffStates(b.t, "A after B", wantA, b.state())
		},
		extra:    bArgs,
		anyOrder: true,
		check: func(ref steps.Report, want state) bool {
			systems := map[string]bool{}
			for _, w := range ref.Writes {
				systems[strings.Fields(w)[0]] = true
			}
			return b.declares(bFile, want) && len(systems) == 3 && want.String() != wantA.String()
		},
	})
}
