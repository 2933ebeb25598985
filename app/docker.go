package app

import (
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/calls"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/wait"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps/reach"
)

// DockerStep returns the docker/reachable step alone, for the commands that only talk to the Docker Engine
// (up, down), with the same probe as Steps: it waits up to cfg.WaitTimeout for the engine at cfg.Docker.Host
// and requires a Swarm manager. The client it makes is the returned Systems' Docker (nil until the step ran);
// Close releases it.
func DockerStep(cfg *config.Config, counter *calls.Counter, progress wait.Progress) (*Systems, steps.Step) {
	sys := &Systems{Config: cfg, Counter: counter}
	return sys, reach.New(DockerReachable, "Docker Engine", cfg.Docker.Host, cfg.WaitTimeout, progress, sys.dockerProbe)
}
