// Package policyfile is the OpenZiti policy file: OpenZiti policies as code. A YAML policy file declares
// services and their configs, posture checks, service policies, edge-router and service-edge-router policies,
// and the role attributes of identities. This package parses and validates it into a Policy in the
// controller's terms; the step ziti/policies (steps/policies) makes the controller match it, and up checks the
// file before it ships it to the bootstrap job.
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
package policyfile
