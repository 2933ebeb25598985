// Package spireentries is the step "spire/entries": it makes the SPIRE server's registration entries match a
// declared list, in the manner of spire-controller-manager.
//
// # Declaration
//
// A YAML file (LoadFile) or a list built in code (Defaults):
//
//	entries:
//	  - spiffeId: spiffe://openziti.local/ziti-router
//	    parentId: spiffe://openziti.local/ziti-bootstrap/node   # optional; default NodeAlias(trust domain)
//	    selectors: ["docker:label:app:ziti-router"]            # all must match (SPIRE ANDs them)
//	    x509SvidTtl: 3600                                      # seconds; 0 or absent: the server's default
//	    jwtSvidTtl: 300                                        # seconds; 0 or absent: the server's default
//	    dnsNames: [ziti-edge-router]
//	    federatesWith: []                                      # trust domain names
//	    admin: false
//	    downstream: false
//	    hint: ""
//	    name: ""   # optional; only to declare two entries with the same spiffeId and parentId
//
// Everything is validated before any call (Validate): SPIFFE IDs parse and belong to the configured trust
// domain, workload IDs are outside SPIRE's reserved /spire/ namespace, selectors are TYPE:VALUE with both parts
// non-empty, and no two entries share a spiffeId+parentId(+name) or a spiffeId+parentId+selectors (SPIRE would
// refuse the second). Each error names the entry index and field and says how to fix it.
//
// # Ownership
//
// An entry created by this step gets the ID IDPrefix + 32 hex digits: the first 128 bits of the SHA-256 of its
// SPIFFE ID, parent ID and name. The ID is stable, so it is also the entry's identity: a changed selector, TTL
// or DNS name is an update of the same entry, not a delete and a create. Only entries whose ID has exactly that
// form are ever updated or deleted; every other entry (created by an operator, by CreateJoinToken, by another
// tool, or by a ziti-bootstrap with another Config.IDPrefix) is foreign and is never touched. A declared entry
// that SPIRE already has as a foreign entry (same SPIFFE ID, parent and selectors) cannot be created: if the
// foreign entry has the declared field values, the plan notes it and leaves it; otherwise planning fails and
// says which foreign entry to delete.
//
// # Reconciliation
//
// Plan lists all entries, keys both sides by entry ID, and sorts the declared entries into create (missing),
// update (which fields differ) and delete (owned but no longer declared). Apply carries out exactly that plan
// with batch calls in the order create, update, delete (an owned entry that blocks the creation of its
// replacement, e.g. after a rename, is deleted first). Per-entry failures do not stop the other entries; they
// are joined into the returned error. On a converged server Plan returns an empty plan and Apply makes no call.
//
// # Parent ID: one node alias for all agents
//
// SPIRE hands a workload an SVID only through an agent that the entry's parent ID designates. In a Docker Swarm
// with one SPIRE agent per node, the Ziti edge router and the bootstrap job may be scheduled on any node, so
// the parent must name every agent at once: a node alias. NodeAlias(td) is spiffe://TD/ziti-bootstrap/node.
// With the join_token node attestor, each node's token is created with agent ID NodeAlias
// (spire.Client.CreateJoinToken(ctx, ttl, NodeAlias(td)), or `spire-server token generate -spiffeID
// spiffe://TD/ziti-bootstrap/node`); the server then adds a node-alias entry that maps that node's agent
// (spiffe://TD/spire/agent/join_token/TOKEN) to NodeAlias. With another node attestor, declare the alias
// entry yourself: spiffeId NodeAlias, parentId spiffe://TD/spire/server, and the node selectors all your nodes
// share. Entries whose parent is a single agent's ID (spiffe://TD/spire/agent/join_token/TOKEN) would
// instead pin the workload to that node, and break when the token is renewed.
//
// # Defaults
//
// Defaults declares the two workloads ziti-bootstrap deploys, selected by Docker container labels (the
// SPIRE agent's docker workload attestor emits docker:label:KEY:VALUE for each label of the calling container):
//
//   - spiffe://TD/ziti-router, selector docker:label:app:ziti-router (the Ziti edge router);
//   - spiffe://TD/ziti-bootstrap, selector docker:label:app:ziti-bootstrap (this tool's own job).
//
// In a Swarm stack these must be container labels (the service's `labels:`), not service labels
// (`deploy.labels:`), which containers do not carry and the attestor cannot see.
package spireentries
