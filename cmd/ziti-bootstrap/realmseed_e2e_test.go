package main

import (
	"context"
	"slices"
	"strings"

	"github.com/ziti-bootstrap/ziti-bootstrap/stacks"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
)

// realmImported checks the first bootstrap of a new system (rep): Keycloak had imported, at its first start, the
// realm the job declares (app/deploy.AddRealmSeed), so the job's keycloak/realm step found the realm, its public
// client, the client's mappers and the user profile as declared, and wrote none of them.
func (d *devSystem) realmImported(rep steps.Report) {
	d.tb.Helper()
	notes := d.notes(rep, jobStep)
	if !slices.ContainsFunc(notes, func(n string) bool { return strings.HasPrefix(n, "| keycloak/realm ") }) {
		d.tb.Fatalf("the bootstrap job's output has no keycloak/realm step: %v", notes)
	}
	for _, n := range notes {
		for _, kind := range []string{"keycloak-realm", "keycloak-client", "keycloak-protocol-mapper", "keycloak-user-profile-attribute"} {
			if strings.Contains(n, "+ create "+kind+" ") || strings.Contains(n, "~ update "+kind+" ") {
				d.tb.Errorf("the first bootstrap wrote a %s: Keycloak did not import the declared realm at its start: %q", kind, n)
			}
		}
	}
}

// keycloakContainer is the ID of the running container of the keycloak service.
func (d *devSystem) keycloakContainer(ctx context.Context) (svcID, id string) {
	d.tb.Helper()
	ns := d.names[stacks.Keycloak]
	svcs, err := d.c.Services(ctx, ns)
	if err != nil {
		d.tb.Fatal(err)
	}
	for _, s := range svcs {
		if s.Spec.Name == ns+"_keycloak" {
			svcID = s.ID
		}
	}
	cs, err := d.c.Containers(ctx, ns)
	if err != nil {
		d.tb.Fatal(err)
	}
	for _, c := range cs {
		if c.ServiceID == svcID && c.State == "running" {
			id = c.ID
		}
	}
	if svcID == "" || id == "" {
		d.tb.Fatalf("no running container of %s_keycloak", ns)
	}
	return svcID, id
}

// changedRealmKeepsKeycloak runs up with another redirect URI of the public client: the bootstrap job runs again
// and updates the client, and Keycloak, whose realm file only seeds its first start, is neither updated nor
// restarted (the same container runs).
func (d *devSystem) changedRealmKeepsKeycloak(ctx context.Context) {
	d.tb.Helper()
	_, before := d.keycloakContainer(ctx)
	rep, logs := d.runLogged("up --dev with another redirect URI", d.up("--set",
		"KEYCLOAK_REDIRECT_URIS=http://localhost:20314/auth/callback,http://127.0.0.1:20314/auth/callback,http://localhost:20399/auth/callback")...)
	// a change: up's read-only pass gives way at its first write, and the run under the lock makes it
	if !strings.Contains(logs, "read-only pass: stack/openziti would write: running under the lock") &&
		!strings.Contains(logs, "read-only pass: not run, the lock is not free") {
		d.tb.Errorf("up with a change: the read-only pass did not give way at the OpenZiti stack's write:\n%s", lastLines(logs, 20))
	}
	for _, s := range rep.Steps {
		if s.Name == "stack/keycloak" && s.Status != steps.Unchanged {
			d.tb.Errorf("a changed realm declaration changed the Keycloak stack: %+v", s.Changes)
		}
	}
	if !slices.ContainsFunc(d.notes(rep, jobStep), func(n string) bool {
		return strings.Contains(n, "update keycloak-client ") && strings.Contains(n, "redirectUris")
	}) {
		d.tb.Errorf("the bootstrap job did not update the client's redirect URIs: %v", d.notes(rep, jobStep))
	}
	if _, after := d.keycloakContainer(ctx); after != before {
		d.tb.Errorf("Keycloak was restarted (container %.12s, then %.12s) for a realm file it no longer reads", before, after)
	}
}
