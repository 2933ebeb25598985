// Package policies is the step "ziti/policies": OpenZiti policies as code. A YAML policy file declares
// services and their configs, posture checks, service policies, edge-router and service-edge-router policies,
// and the role attributes of identities; the step makes the controller match it, touching only what it owns.
//
// # The policy file
//
// examples/policies/iot-segments.yaml is a complete example (IoT devices and gateways segmented by device type,
// location and protocol). The keys, all optional:
//
//	identityRules:                 # role attributes derived from identities' externalIds (e.g. SPIFFE IDs)
//	  - externalId: spiffe://example.org/device/{type}/{location}/{name}   # {var}: one segment; *: any one segment
//	    roleAttributes: ["device-type:{type}", "location:{location}"]
//	identities:                    # role attributes of identities by name
//	  - {name: sensor-hub, roleAttributes: [hub]}
//	external:                      # made elsewhere, may be named here (attributes without '#')
//	  identityRoles: [spire-devices]
//	  serviceRoles: []
//	  postureCheckRoles: []
//	  services: [legacy-app]
//	  postureChecks: []
//	  configs: []
//	postureChecks:
//	  - {name: linux, type: OS, roleAttributes: [os], operatingSystems: [{type: Linux, versions: [">=5.10.0"]}]}
//	  - {name: known-nics, type: MAC, macAddresses: ["aa:bb:cc:dd:ee:ff"]}
//	configs:                       # named configs: exactly one of intercept (intercept.v1) and host (host.v1)
//	  - name: web-intercept
//	    intercept:
//	      protocols: [tcp]                         # tcp, udp
//	      addresses: [web.iot, "*.iot", 10.9.0.0/16]
//	      portRanges: [{low: 443, high: 443}]
//	      sourceIp: "$src_ip:$src_port"            # pass the client's source address to the hosting side
//	      allowedSourceAddresses: [192.168.20.0/24] # intercept only connections from these (controller 1.7+)
//	      dialOptions: {connectTimeoutSeconds: 5, identity: "$dst_ip"}
//	services:
//	  - name: web
//	    roleAttributes: [web]
//	    configs: [web-intercept]                   # by name; at most one config of each type
//	    host:                                      # inline: becomes the config "web.host.v1" (intercept: "web.intercept.v1")
//	      protocol: tcp                            # or forwardProtocol: true + allowedProtocols
//	      address: 127.0.0.1                       # or forwardAddress: true + allowedAddresses
//	      port: 8443                               # or forwardPort: true + allowedPortRanges
//	      allowedSourceAddresses: [192.168.20.0/24]
//	    encryptionRequired: true                   # default true
//	    terminatorStrategy: smartrouting           # default; or weighted, random, ha
//	servicePolicies:
//	  - name: kitchen-dial-web
//	    type: Dial                                 # or Bind
//	    semantic: AllOf                            # default AnyOf; applies to identityRoles and serviceRoles
//	    identityRoles: ["#device-type:temperature", "#location:kitchen"]   # #attribute, #all or @name
//	    serviceRoles: ["@web"]
//	    postureCheckRoles: ["@linux"]
//	edgeRouterPolicies:
//	  - {name: devices-routers, identityRoles: ["#location:kitchen"], edgeRouterRoles: ["#public"]}
//	serviceEdgeRouterPolicies:
//	  - {name: web-routers, serviceRoles: ["@web"], edgeRouterRoles: ["@router-1"]}
//	defaults:                      # router policies derived from the file, scoped to what it declares
//	  edgeRouterRoles: ["#public"]                 # required: the routers they grant (write ["#all"] to mean all)
//	  edgeRouterPolicy: iot-endpoints-routers      # identities named by the service policies may use them
//	  serviceEdgeRouterPolicy: iot-services-routers  # the file's services may be reached through them
//
// Roles name objects by "@name" (the step turns names into the ids the controller wants) or by "#attribute".
//
// # Validation
//
// Parse and LoadFile check the whole file before any call and report every problem at once (*Error), each as
// FILE:LINE: PATH: what is wrong; what is expected, e.g.
//
//	iot.yaml:14: services[2].intercept.portRanges[0].high: 70000 is out of range; expected a port number 1-65535
//
// Checked: YAML syntax, unknown keys (with the nearest known key), value types, names (present, unique per
// kind, inline config names included), role attributes, protocols, ports and ranges, addresses, CIDRs
// (including host bits set), sourceIp, MAC addresses, operating systems, host.v1's forward* combinations, rule
// placeholders, and references: a "#attribute" role must be given by the file (to identities, by rules, to
// services or posture checks) or listed in external; an "@name" of a service, posture check or config must be
// declared or listed in external. Identities and edge routers are never declared by the file: their "@name"s
// are checked when planning, against the controller.
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
