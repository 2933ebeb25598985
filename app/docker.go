package app

import (
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/calls"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/docker"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/wait"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps/reach"
)

// DockerStep returns the docker/reachable step alone, for the commands that only talk to the Docker Engine
// (up, down), with the same probe as Steps: it waits up to cfg.WaitTimeout for the engine at cfg.Docker.Host
// and requires a Swarm manager. The client, built now without a call, is the returned Systems' Docker (nil only
// when DOCKER_HOST was refused: the step then fails); Close releases it. seen, when set, is the engine's Swarm
// state as this run has just read it (up's preflight): the step reports it, and requires a manager, without
// reading it again.
func DockerStep(cfg *config.Config, counter *calls.Counter, progress wait.Progress, seen *docker.SwarmInfo) (*Systems, steps.Step) {
	sys := &Systems{Config: cfg, Counter: counter, dockerSeen: seen}
	sys.dialDocker()
	return sys, reach.New(DockerReachable, "Docker Engine", cfg.Docker.Host, cfg.WaitTimeout, progress, sys.dockerProbe)
}
