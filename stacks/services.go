package stacks

// Compose keys of services of the OpenZiti stack that the tool treats specially.
const (
	BootstrapService = "bootstrap" // ziti-bootstrap's one-shot job (apply inside the Swarm)
	BackupService    = "backup"    // the scheduled backup service: deployed only when BACKUP_SCHEDULE is set
	// BootstrapDockerService is the bootstrap job's Docker proxy: it serves nothing else.
	BootstrapDockerService = "bootstrap-docker"
	// BackupDockerService is the backup service's Docker proxy: deployed with it.
	BackupDockerService = "backup-docker"
)

// HasService reports whether the stack has the service with compose key key.
func (st *Stack) HasService(key string) bool {
	for _, s := range st.Services {
		if s.Spec.Name == st.Namespace+"_"+key {
			return true
		}
	}
	return false
}
