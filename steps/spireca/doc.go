// Package spireca is the step "spire/ziti-ca": it registers the roots of SPIRE's X.509 trust bundle as
// verified OpenZiti certificate authorities with auto-enrollment, so that any holder of an X509-SVID can enroll
// in OpenZiti on its own (POST /enroll?method=ca) and then log in with its SVID.
//
// # Verification route
//
// OpenZiti trusts a third-party CA only once it is verified: the controller gives the CA a verificationToken,
// and wants a certificate whose subject CN is that token, signed directly by the CA's own key. SPIRE never
// gives out the keys of its signing CAs, and those rotate (ca_ttl, 24 h by default), so registering SPIRE's own
// CA breaks at every rotation. ziti-bootstrap therefore expects SPIRE to run with the "disk"
// UpstreamAuthority: a root certificate and key that the operator provides. SPIRE's signing CA is then an
// intermediate under that root, the root is what SPIRE's X.509 bundle holds, and the operator gives the same
// root key to ziti-bootstrap as the secret SPIRE_UPSTREAM_CA_KEY (one or more PEM private keys: during a root
// rotation, both). Every SVID carries its SPIRE intermediate, so a workload presents leaf + intermediate and
// the controller chains it to the registered root.
//
// Where the key must not leave SPIRE's side (the Swarm: a root rotation must change the SPIRE stack only), the
// SPIRE CA signer beside SPIRE's server holds it (Settings.Signer, SPIRE_CA_SIGNER, internal/casigner): the step
// asks it for the verification certificate of a root none of its own keys matches, and only when a root must be
// registered or verified.
//
// The step reads the bundle from SPIRE's admin API (never from files), so it follows what SPIRE really
// trusts. The key is only needed to verify a root in OpenZiti: a converged system plans nothing and does not
// use it. When a root must be registered or verified and no key in SPIRE_UPSTREAM_CA_KEY matches its public
// key, planning fails with an error naming the root's subject and SHA-256 fingerprint; nothing is written.
//
// # What is registered
//
// For every root R in the bundle, one CA named NamePrefix + "-" + the first 12 hex digits of R's SHA-256
// fingerprint (CAName), e.g. "spire-3f9a0c11d2e4": a name that is stable for R, differs between roots, so old
// and new can coexist during a rotation, and tells an operator which root it holds. Its settings:
//
//	isAutoCaEnrollmentEnabled: true    isAuthEnabled: true    isOttCaEnrollmentEnabled: false
//	identityRoles: Roles (ZITI_SPIRE_CA_ROLES)    identityNameFormat: NameFormat (ZITI_SPIRE_CA_NAME_FORMAT)
//	externalIdClaim: {location: SAN_URI, matcher: SCHEME, matcherCriteria: spiffe, parser: NONE, index: 0}
//	tags: {"ziti-bootstrap": "spire-ca", "ziti-bootstrap.caName": NamePrefix, "spiffeTrustDomain": TD}
//
// The externalId of an enrolled identity is its full SPIFFE ID, so a renewed SVID (new key, same ID) logs in as
// the same identity. SVIDs have no subject CN: the default name format [caName]-[requestedName] names the
// identity by the name the workload asks for at enrollment (else its id); [commonName] would give "spire-…-".
//
// # Ownership
//
// A CA is owned when its tag "ziti-bootstrap" is "spire-ca" and its tag "ziti-bootstrap.caName" is this
// step's NamePrefix. Only owned CAs are ever updated, verified or deleted. Every other CA is foreign and left
// as it is, including CAs of a ziti-bootstrap configured with another ZITI_SPIRE_CA_NAME (two SPIRE servers can
// be bound to one controller that way). Tags an operator adds to an owned CA are kept. OpenZiti accepts a
// certificate in one CA only: when a root of the bundle is already held by a foreign CA, or a foreign CA has
// the name this step wants, planning fails and says which CA to delete.
//
// # Reconciliation and rotation
//
// Plan reads the bundle and lists the controller's CAs, keys both by the SHA-256 fingerprint of the
// certificate, and plans, in this order:
//
//   - create (and verify) a CA for each root that has none;
//   - verify each owned CA of a root that is not verified yet (a run that stopped between create and verify is
//     repaired by the next one);
//   - update each owned CA whose settings differ, naming the fields;
//   - delete each owned CA whose root is no longer in the bundle.
//
// Apply carries out exactly that plan in that order, and deletes only when every create, verify and update
// before it succeeded: when a root rotates, the new root is registered and verified before the old one goes,
// so SVIDs of either root keep working throughout. While SPIRE's bundle holds both roots (SPIRE keeps an old
// root in its bundle until it prunes it), both CAs stay; once SPIRE drops the old root, the next run deletes
// its CA. An empty bundle is an error, never a reason to delete. An unchanged bundle gives an empty plan and no
// write. Identities are matched by externalId (the SPIFFE ID), not by CA: a workload enrolled under the old
// root logs in with an SVID of the new root as the same identity, while certificates of a deleted root no
// longer log in (both tested against the controller). Identities enrolled through a deleted CA stay.
//
// # Wiring
//
// FromConfig(spireClient, zitiCAs, cfg.Spire) maps the configuration (ZITI_SPIRE_CA_NAME,
// ZITI_SPIRE_CA_ROLES, ZITI_SPIRE_CA_NAME_FORMAT, TRUST_DOMAIN, SPIRE_UPSTREAM_CA_KEY) to Settings and
// calls New.
package spireca
