// Package testbed starts the real servers ziti-bootstrap is tested against (OpenZiti, SPIRE, Keycloak,
// PostgreSQL, an S3-compatible server, the Docker Engine) as host processes on loopback, and gives tests their
// addresses and credentials. `go run ./internal/testbed/cmd up` starts them once for a whole test run and writes
// Info as JSON to StateFile; tests call Load, which fails (or, with -short, skips) when a server is not there.
package testbed

// Info is what the test bed started and how to reach it. Zero sections were not started.
type Info struct {
	Dir      string       `json:"dir"`
	Ziti     ZitiInfo     `json:"ziti"`
	Spire    SpireInfo    `json:"spire"`
	Keycloak KeycloakInfo `json:"keycloak"`
	Postgres PostgresInfo `json:"postgres"`
	S3       S3Info       `json:"s3"`
	Docker   DockerInfo   `json:"docker"`
}

// ZitiInfo: a quickstart controller + edge router (ziti edge quickstart).
type ZitiInfo struct {
	URL      string `json:"url"`  // https://127.0.0.1:1280
	User     string `json:"user"` // admin
	Password string `json:"password"`
	CAFile   string `json:"caFile"` // PEM of the controller's CA chain, to pin
	Home     string `json:"home"`   // quickstart home (db in Home/db/ctrl.db)
	Bin      string `json:"bin"`    // the ziti binary
	PID      int    `json:"pid"`
}

// SpireInfo: a SPIRE server (sqlite datastore, disk key manager, join_token attestor, disk UpstreamAuthority
// with UpstreamCert/UpstreamKey) and one agent attested with a join token.
type SpireInfo struct {
	Socket       string `json:"socket"`       // server admin API unix socket
	TrustDomain  string `json:"trustDomain"`  // zb.test
	UpstreamCert string `json:"upstreamCert"` // PEM root the server chains to (disk UpstreamAuthority)
	UpstreamKey  string `json:"upstreamKey"`  // its private key (PEM)
	ServerBin    string `json:"serverBin"`
	AgentBin     string `json:"agentBin"`
	ServerConf   string `json:"serverConf"`
	AgentSocket  string `json:"agentSocket"` // workload API socket
	AgentID      string `json:"agentId"`     // SPIFFE ID of the attested agent (join_token/TOKEN)
	NodeAlias    string `json:"nodeAlias"`   // spiffe://TD/ziti-bootstrap/node: an alias entry whose parent is AgentID
	DataDir      string `json:"dataDir"`
	PID          int    `json:"pid"`
	AgentPID     int    `json:"agentPid"`
}

// KeycloakInfo: Keycloak from its Maven Central distribution, built for PostgreSQL (start --optimized).
type KeycloakInfo struct {
	URL           string `json:"url"` // http://127.0.0.1:8180
	AdminUser     string `json:"adminUser"`
	AdminPassword string `json:"adminPassword"`
	// AdminClientID and AdminClientSecret: the admin service account Keycloak made on its first start
	// (KC_BOOTSTRAP_ADMIN_CLIENT_ID/SECRET); empty for a Keycloak started before the test bed knew about it
	// (KeycloakAdminClient makes it then).
	AdminClientID     string `json:"adminClientId,omitempty"`
	AdminClientSecret string `json:"adminClientSecret,omitempty"`
	Home              string `json:"home"`
	PID               int    `json:"pid"`
}

// PostgresInfo: a private PostgreSQL cluster (Debian's server binaries).
type PostgresInfo struct {
	Host     string `json:"host"`
	Port     int    `json:"port"`
	User     string `json:"user"`
	Password string `json:"password"`
	Database string `json:"database"`
	BinDir   string `json:"binDir"`
	DataDir  string `json:"dataDir"`
	PID      int    `json:"pid"`
}

// S3Info: SeaweedFS (weed mini) S3 gateway.
type S3Info struct {
	Endpoint  string `json:"endpoint"` // http://127.0.0.1:8333
	Region    string `json:"region"`
	AccessKey string `json:"accessKey"`
	SecretKey string `json:"secretKey"`
	PID       int    `json:"pid"`
}

// DockerInfo: the Docker Engine, in Swarm mode.
type DockerInfo struct {
	Host string `json:"host"` // unix:///var/run/docker.sock
	PID  int    `json:"pid"`
}
