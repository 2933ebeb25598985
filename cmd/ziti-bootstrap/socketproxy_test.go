package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/mount"

	"github.com/ziti-bootstrap/ziti-bootstrap/stacks"
)

// In the OpenZiti stack, the bootstrap job reaches the Docker Engine only through its proxy: it mounts no Docker
// socket, its DOCKER_HOST is the socket the proxy serves in their shared volume, and the proxy, the only one of
// the two with the Engine's socket, serves the job's policy.
func TestBootstrapJobReachesDockerThroughItsProxy(t *testing.T) {
	st := openZitiStack(t)
	var job, proxy []string
	var jobMounts, proxyMounts []mount.Mount
	for _, s := range st.Services {
		cs := s.Spec.TaskTemplate.ContainerSpec
		switch strings.TrimPrefix(s.Spec.Name, st.Namespace+"_") {
		case stacks.BootstrapService:
			job, jobMounts = cs.Env, cs.Mounts
		case bootstrapDocker:
			proxy, proxyMounts = cs.Args, cs.Mounts
		}
	}
	engine := func(m mount.Mount) bool { return m.Source == "/var/run/docker.sock" }
	if slices.ContainsFunc(jobMounts, engine) {
		t.Errorf("the bootstrap job mounts the Docker Engine's socket: %+v", jobMounts)
	}
	if !slices.Contains(job, "DOCKER_HOST=unix:///run/zb-docker/docker.sock") {
		t.Errorf("the bootstrap job's DOCKER_HOST is not its proxy: %v", job)
	}
	shared := func(ms []mount.Mount) string {
		for _, m := range ms {
			if m.Target == "/run/zb-docker" && m.Type == mount.TypeVolume {
				return m.Source
			}
		}
		return ""
	}
	if v := shared(jobMounts); v == "" || v != shared(proxyMounts) {
		t.Errorf("the job (%q) and its proxy (%q) do not share the proxy's socket volume", v, shared(proxyMounts))
	}
	if !slices.ContainsFunc(proxyMounts, engine) || strings.Join(proxy, " ") != "socket-proxy --policy bootstrap --listen /run/zb-docker/docker.sock" {
		t.Errorf("the proxy: %v, mounts %+v", proxy, proxyMounts)
	}
}
