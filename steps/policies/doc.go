// Package policies is the step "ziti/policies": it makes the OpenZiti controller match a policy file
// (internal/policyfile, where the file's format and validation are described), touching only what it owns.
//
// # Ownership
//
// Every object the step creates carries the tag ziti-bootstrap=policies (Config.Owner). Only such objects are
// updated or deleted; an object of a declared name without that tag (made by hand, or by another step) fails
// the plan with the file location and how to resolve it. Owned objects no longer declared are deleted, except
// those listed in external. Updates keep the objects' other tags. Identities are never created or deleted.
//
// # Role attributes of identities
//
// An identity gets the attributes its identities entry and every matching rule give it. The step adds the
// missing ones and records those it added in the identity tag "ziti-bootstrap.policies.roleAttributes"
// (AttributesTag; a comma-separated list). When the file stops giving an attribute, the step removes it only if
// that tag says the step added it. Attributes the identity had anyway (by hand, from a CA's identityRoles, from
// another tool) are never removed, even when the file also gives them; attributes the step added that someone
// removed by hand are dropped from the tag. Only roleAttributes and tags are written (a PATCH), so other fields
// changed meanwhile are not undone. An identity named in the file that does not exist yet is noted, not an
// error: enrolled devices appear later, and the next run gives them their attributes.
//
// # Reconciliation
//
// Plan lists config types, configs, services, posture checks, identities, edge routers and the three policy
// kinds (concurrently), compares in the file's terms (roles as "@name", configs by name, MACs normalised, sets
// as sets), and plans creates, updates naming the differing fields with before and after, and deletes. A
// config's or posture check's type cannot change in place: planning fails and asks for a new name. Apply runs
// in dependency order: configs and posture checks; services and identities' attributes; policies; then the
// deletes in reverse (policies; services and posture checks; configs). Writes within a phase run concurrently
// (Config.Parallel). A failed write does not stop the others; what depends on it fails saying so; all errors
// are joined. On a converged controller the plan is empty and apply makes no call.
package policies
