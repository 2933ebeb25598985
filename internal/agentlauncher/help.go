package agentlauncher

// Help is the help of `ziti-bootstrap agent-launcher`: what the launcher does and its settings (FromEnv).
const Help = `Keeps one SPIRE agent running on this node as a plain Docker container with the host's PID namespace (a Swarm
service cannot have it, and SPIRE's workload attestation needs it). Run it as a global Swarm service of this image,
its DOCKER_HOST the node's socket-proxy --policy agent-launcher (given the same ZB_AGENT_* variables). It creates the container (and its volumes) when missing, replaces it when its
spec changes (image, files, binds, network), starts it when stopped, then watches its events and does so again.
The agent has no Docker socket of the Engine's: the launcher serves it a filtering proxy (policy spire-agent of
socket-proxy: container and image inspection) in a volume both mount. On SIGTERM it exits and leaves the agent
running. Settings, all from the environment:

  ZB_AGENT_IMAGE          the spire-agent image (entrypoint "spire-agent run"); pulled when the node lacks it
  ZB_AGENT_CONTAINER      the agent container's name
  ZB_AGENT_NAMESPACE      label com.docker.stack.namespace of the container and its volumes
  ZB_AGENT_NETWORK        "host", or the attachable overlay the agent joins to reach spire-server
  ZB_AGENT_FILES_DIR      directory whose files (agent.conf, …) are copied to /etc/spire/agent in the container
  ZB_AGENT_SOCKET_VOLUME  volume at /run/spire/agent/public (the Workload API socket api.sock)
  ZB_AGENT_DATA_VOLUME    volume at /var/lib/spire/agent
  ZB_AGENT_PROXY_VOLUME   volume at /run/zb-docker in the agent (read-only): the socket docker.sock of its proxy
  ZB_AGENT_PROXY_DIR      where this launcher has the same volume mounted: it serves docker.sock there
  ZB_AGENT_BINDS          optional: HOST:CONTAINER,… read-only host binds (never the Engine's socket)
  ZB_TOOLS_DIR            optional: copy this executable there as ziti-bootstrap (when it differs)
  DOCKER_HOST             optional: the engine or its proxy, a unix socket (default unix:///var/run/docker.sock)

Exit codes: 0 stopped by a signal, 2 invalid settings (the variable is named), 1 otherwise.`
