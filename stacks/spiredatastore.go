package stacks

import (
	"fmt"
	"strconv"
	"strings"
)

// SpireDatastore is the SPIRE server's datastore a deployment uses: the files datastore<Suffix>.sqlite3 and
// keys<Suffix>.json in the server's volume, and the agents' data directory /var/lib/spire/agent<Suffix>. The
// stack variable SPIRE_DATASTORE_SUFFIX selects it; up derives it with PlanSpireDatastore.
type SpireDatastore struct {
	Suffix string
	// Fresh is true when the deployment moves to a new, empty datastore (see PlanSpireDatastore).
	Fresh bool
	// Why explains a fresh datastore, for the operator.
	Why string
}

// PlanSpireDatastore chooses the datastore for a SPIRE server image newImage, given the image and datastore suffix
// of the server that runs now (runningImage "" when none does).
//
// SPIRE migrates its datastore one minor version at a time (1.13 → 1.14 → 1.15), and a server refuses a datastore
// more than one minor version old. When the versions in the image tags jump further than that (or change major
// version), the deployment gets a fresh datastore under the same upstream root: OpenZiti trusts that root, so its
// CA binding holds; the bootstrap job re-applies the registration entries from their declarations; the agents,
// given a fresh data directory too, attest again. The old files stay in the volume (the way back). Going back to
// an older minor version on the same datastore is refused. Tags that are not versions (e.g. "latest") keep the
// datastore as it is.
func PlanSpireDatastore(runningImage, runningSuffix, newImage string) (SpireDatastore, error) {
	keep := SpireDatastore{Suffix: runningSuffix}
	if runningImage == "" {
		return keep, nil
	}
	from, ok1 := imageVersion(runningImage)
	to, ok2 := imageVersion(newImage)
	if !ok1 || !ok2 {
		return keep, nil
	}
	switch {
	case to[0] == from[0] && to[1] < from[1], to[0] < from[0]:
		return keep, fmt.Errorf("SPIRE_SERVER_IMAGE %s is older than the running %s (%d.%d → %d.%d): SPIRE cannot open a datastore of a newer version; keep the running version, or restore a backup taken before the upgrade",
			newImage, runningImage, from[0], from[1], to[0], to[1])
	case to[0] == from[0] && to[1]-from[1] <= 1:
		return keep, nil
	}
	suffix := fmt.Sprintf("-%d.%d", to[0], to[1])
	return SpireDatastore{Suffix: suffix, Fresh: true, Why: fmt.Sprintf(
		"SPIRE %d.%d → %d.%d: SPIRE migrates its datastore one minor version at a time, so the server starts on a fresh datastore (datastore%s.sqlite3, in the same volume; the old one is kept) under the same upstream root: OpenZiti's CA binding holds, the bootstrap job registers the entries again, and the agents attest again",
		from[0], from[1], to[0], to[1], suffix)}, nil
}

// ImageVersion reads major, minor and patch from an image reference's tag (for internal/upgrade).
func ImageVersion(image string) ([3]int, bool) { return imageVersion(image) }

// imageVersion reads major, minor and patch from an image reference's tag (repo:1.15.3, repo:v1.15.3).
func imageVersion(image string) ([3]int, bool) {
	var v [3]int
	image, _, _ = strings.Cut(image, "@") // a pinned digest
	i := strings.LastIndex(image, ":")
	if i < 0 || strings.Contains(image[i:], "/") {
		return v, false
	}
	tag := strings.TrimPrefix(image[i+1:], "v")
	tag, _, _ = strings.Cut(tag, "-")
	parts := strings.Split(tag, ".")
	if len(parts) < 2 || len(parts) > 3 {
		return v, false
	}
	for j, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return v, false
		}
		v[j] = n
	}
	return v, true
}
