package policyfile

// The kinds of the file's objects in the controller (the kinds of the changes the step plans).
const (
	KindConfig                  = "ziti-config"
	KindService                 = "ziti-service"
	KindPostureCheck            = "ziti-posture-check"
	KindIdentity                = "ziti-identity"
	KindServicePolicy           = "ziti-service-policy"
	KindEdgeRouterPolicy        = "ziti-edge-router-policy"
	KindServiceEdgeRouterPolicy = "ziti-service-edge-router-policy"
)

// The policy file's YAML form. Field comments are the reference; doc.go shows a whole file.

// File is the YAML document Parse reads.
type File struct {
	// Identities gives named identities role attributes.
	Identities []IdentitySpec `yaml:"identities"`
	// IdentityRules derive role attributes from identities' externalIds (e.g. SPIFFE IDs).
	IdentityRules []IdentityRule `yaml:"identityRules"`
	// External lists what this file may name but does not define (made by hand, or by another tool).
	External External `yaml:"external"`
	// PostureChecks are conditions on endpoints that service policies may require.
	PostureChecks []PostureCheckSpec `yaml:"postureChecks"`
	// Configs are intercept.v1 and host.v1 configs that services reference by name.
	Configs []ConfigSpec `yaml:"configs"`
	// Services, each with its configs (by name, or inline as intercept and host).
	Services []ServiceSpec `yaml:"services"`
	// ServicePolicies grant identities Dial or Bind on services.
	ServicePolicies []ServicePolicySpec `yaml:"servicePolicies"`
	// EdgeRouterPolicies let identities use edge routers.
	EdgeRouterPolicies []EdgeRouterPolicySpec `yaml:"edgeRouterPolicies"`
	// ServiceEdgeRouterPolicies let services be reached through edge routers.
	ServiceEdgeRouterPolicies []ServiceEdgeRouterPolicySpec `yaml:"serviceEdgeRouterPolicies"`
	// Defaults derives an edge-router policy and a service-edge-router policy from the rest of the file.
	Defaults *Defaults `yaml:"defaults"`
}

// IdentitySpec gives the identity of this name role attributes (added to those it has; see doc.go).
type IdentitySpec struct {
	Name           string   `yaml:"name"`
	RoleAttributes []string `yaml:"roleAttributes"`
}

// IdentityRule gives role attributes to every identity whose externalId matches a pattern.
type IdentityRule struct {
	// ExternalID is a pattern of '/'-separated segments: a segment is literal text, {var} (one segment,
	// captured), or * (one segment). E.g. spiffe://zb.test/device/{type}/{location}/{name}.
	ExternalID string `yaml:"externalId"`
	// RoleAttributes may use the pattern's {var}s, e.g. device-type:{type}.
	RoleAttributes []string `yaml:"roleAttributes"`
}

// External lists objects and role attributes made elsewhere that roles in this file may name. Attributes are
// written without '#', objects by name. Objects listed here are never changed or deleted.
type External struct {
	IdentityRoles     []string `yaml:"identityRoles"`
	ServiceRoles      []string `yaml:"serviceRoles"`
	PostureCheckRoles []string `yaml:"postureCheckRoles"`
	Services          []string `yaml:"services"`
	PostureChecks     []string `yaml:"postureChecks"`
	Configs           []string `yaml:"configs"`
}

// PostureCheckSpec is a posture check of type OS or MAC.
type PostureCheckSpec struct {
	Name             string   `yaml:"name"`
	Type             string   `yaml:"type"` // OS or MAC
	RoleAttributes   []string `yaml:"roleAttributes"`
	OperatingSystems []OSSpec `yaml:"operatingSystems"` // type OS: any one must match
	MACAddresses     []string `yaml:"macAddresses"`     // type MAC: any one must match
}

// OSSpec is one accepted operating system.
type OSSpec struct {
	Type     string   `yaml:"type"`     // Windows, WindowsServer, Android, iOS, Linux, macOS
	Versions []string `yaml:"versions"` // e.g. ">=5.10.0"; empty accepts every version
}

// ConfigSpec is a named config: exactly one of Intercept (type intercept.v1) and Host (type host.v1).
type ConfigSpec struct {
	Name      string         `yaml:"name"`
	Intercept *InterceptSpec `yaml:"intercept"`
	Host      *HostSpec      `yaml:"host"`
}

// ServiceSpec is a service. Intercept and Host declare its intercept.v1 and host.v1 configs inline; they are
// created as configs named NAME.intercept.v1 and NAME.host.v1.
type ServiceSpec struct {
	Name           string   `yaml:"name"`
	RoleAttributes []string `yaml:"roleAttributes"`
	// Configs names configs of this file (or of external.configs); at most one of each type.
	Configs   []string       `yaml:"configs"`
	Intercept *InterceptSpec `yaml:"intercept"`
	Host      *HostSpec      `yaml:"host"`
	// EncryptionRequired defaults to true (end-to-end encryption).
	EncryptionRequired *bool `yaml:"encryptionRequired"`
	// TerminatorStrategy: smartrouting (default), weighted, random or ha.
	TerminatorStrategy string `yaml:"terminatorStrategy"`
}

// InterceptSpec is an intercept.v1 config: what a tunneler captures on the client side.
type InterceptSpec struct {
	Protocols  []string    `yaml:"protocols"`  // tcp, udp
	Addresses  []string    `yaml:"addresses"`  // host names, *.wildcards, IPs, CIDRs
	PortRanges []PortRange `yaml:"portRanges"` // 1-65535, low <= high
	// SourceIP passes the client's source address to the hosting side, e.g. "$src_ip:$src_port".
	SourceIP string `yaml:"sourceIp"`
	// AllowedSourceAddresses: only connections from these IPs/CIDRs are intercepted (controller 1.7+).
	AllowedSourceAddresses []string     `yaml:"allowedSourceAddresses"`
	DialOptions            *DialOptions `yaml:"dialOptions"`
}

// DialOptions of an intercept.v1 config.
type DialOptions struct {
	ConnectTimeoutSeconds *int   `yaml:"connectTimeoutSeconds"`
	Identity              string `yaml:"identity"` // dial the terminator of this identity
}

// PortRange is an inclusive range of ports.
type PortRange struct {
	Low  *int `yaml:"low"`
	High *int `yaml:"high"`
}

// HostSpec is a host.v1 config: where the hosting tunneler or router forwards connections.
type HostSpec struct {
	Protocol          string      `yaml:"protocol"` // tcp or udp; or forwardProtocol with allowedProtocols
	ForwardProtocol   bool        `yaml:"forwardProtocol"`
	AllowedProtocols  []string    `yaml:"allowedProtocols"`
	Address           string      `yaml:"address"` // or forwardAddress with allowedAddresses
	ForwardAddress    bool        `yaml:"forwardAddress"`
	AllowedAddresses  []string    `yaml:"allowedAddresses"`
	Port              *int        `yaml:"port"` // or forwardPort with allowedPortRanges
	ForwardPort       bool        `yaml:"forwardPort"`
	AllowedPortRanges []PortRange `yaml:"allowedPortRanges"`
	// AllowedSourceAddresses: source IPs/CIDRs the intercepting side may project with sourceIp.
	AllowedSourceAddresses []string `yaml:"allowedSourceAddresses"`
}

// ServicePolicySpec grants Dial or Bind.
type ServicePolicySpec struct {
	Name     string `yaml:"name"`
	Type     string `yaml:"type"`     // Dial or Bind
	Semantic string `yaml:"semantic"` // AnyOf (default) or AllOf: of identityRoles and of serviceRoles
	// Roles: "#attribute", "#all" or "@name".
	IdentityRoles     []string `yaml:"identityRoles"`
	ServiceRoles      []string `yaml:"serviceRoles"`
	PostureCheckRoles []string `yaml:"postureCheckRoles"`
}

// EdgeRouterPolicySpec lets identities use edge routers.
type EdgeRouterPolicySpec struct {
	Name            string   `yaml:"name"`
	Semantic        string   `yaml:"semantic"`
	IdentityRoles   []string `yaml:"identityRoles"`
	EdgeRouterRoles []string `yaml:"edgeRouterRoles"`
}

// ServiceEdgeRouterPolicySpec lets services be reached through edge routers.
type ServiceEdgeRouterPolicySpec struct {
	Name            string   `yaml:"name"`
	Semantic        string   `yaml:"semantic"`
	ServiceRoles    []string `yaml:"serviceRoles"`
	EdgeRouterRoles []string `yaml:"edgeRouterRoles"`
}

// Defaults derives router policies from the file, so that what it declares is usable without granting more:
// EdgeRouterPolicy (a name) lets every identity role named by the file's service policies use the routers
// EdgeRouterRoles; ServiceEdgeRouterPolicy (a name) lets every service of the file use them. EdgeRouterRoles is
// required: write ["#all"] to mean every router.
type Defaults struct {
	EdgeRouterRoles         []string `yaml:"edgeRouterRoles"`
	EdgeRouterPolicy        string   `yaml:"edgeRouterPolicy"`
	ServiceEdgeRouterPolicy string   `yaml:"serviceEdgeRouterPolicy"`
}
