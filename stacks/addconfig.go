package stacks

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/docker/docker/api/types/swarm"
)

// AddConfig gives the service with compose key service a file that is not part of the stack file: data
// becomes a config of the stack (named <namespace>_<key>_<hash>, like the stack's own: a change of data is a
// new config, and so a new service spec), mounted read-only at target, and the service's environment gets
// env=target. up uses it to ship the operator's POLICIES_FILE and SPIRE_ENTRIES_FILE to the bootstrap job, and
// the controller's pinned CA to every service that calls the controller. Several services may share one key
// when they are given the same data.
func (st *Stack) AddConfig(service, key, target, env string, data []byte) error {
	obj, err := newObject(st.Namespace, key, data, nil, false, nil)
	if err != nil {
		return fmt.Errorf("config %s of stack %s: %w", key, st.Name, err)
	}
	return st.addConfig(service, obj, target, env)
}

// AddSeedConfig is AddConfig for a file that seeds a server's first start only: the config is named
// <namespace>_<key>, without a hash of data, so it is created when missing and never replaced. A later change
// of data changes neither the config nor the service's spec (which would restart the service for a file it no
// longer reads); whatever the file seeded is kept up to date by other means. up ships Keycloak's realm import
// file so.
func (st *Stack) AddSeedConfig(service, key, target, env string, data []byte) error {
	obj, err := newObject(st.Namespace, key, data, map[string]string{LabelSeed: "true"}, false, nil)
	if err != nil {
		return fmt.Errorf("config %s of stack %s: %w", key, st.Name, err)
	}
	if obj.Name = st.Namespace + "_" + key; len(obj.Name) > MaxObjectName {
		return fmt.Errorf("config %s of stack %s: name %s is longer than Swarm's %d characters", key, st.Name, obj.Name, MaxObjectName)
	}
	if err := st.addConfig(service, obj, target, env); err != nil {
		return err
	}
	st.Seeds = append(st.Seeds, Seed{Service: st.Namespace + "_" + service, Config: obj.Name, Env: env})
	return nil
}

// WithoutSeeds returns the stack without the seeds drop picks: their services neither mount the config nor get
// its variable, and a config no seed kept is left out. st itself is not changed.
func (st *Stack) WithoutSeeds(drop func(Seed) bool) *Stack {
	var dropped, kept []Seed
	for _, s := range st.Seeds {
		if drop(s) {
			dropped = append(dropped, s)
		} else {
			kept = append(kept, s)
		}
	}
	if len(dropped) == 0 {
		return st
	}
	out := *st
	out.Seeds = kept
	out.Services = slices.Clone(st.Services)
	for i := range out.Services {
		for _, s := range dropped {
			if out.Services[i].Spec.Name != s.Service {
				continue
			}
			cs := *out.Services[i].Spec.TaskTemplate.ContainerSpec
			cs.Configs = slices.DeleteFunc(slices.Clone(cs.Configs), func(r *swarm.ConfigReference) bool { return r.ConfigName == s.Config })
			cs.Env = slices.DeleteFunc(slices.Clone(cs.Env), func(kv string) bool { return strings.HasPrefix(kv, s.Env+"=") })
			out.Services[i].Spec.TaskTemplate.ContainerSpec = &cs
		}
	}
	out.Configs = slices.DeleteFunc(slices.Clone(st.Configs), func(o Object) bool {
		used := func(s Seed) bool { return s.Config == o.Name }
		return slices.ContainsFunc(dropped, used) && !slices.ContainsFunc(kept, used)
	})
	return &out
}

// addConfig mounts the config obj in the service with compose key service at target, and sets env=target.
func (st *Stack) addConfig(service string, obj Object, target, env string) error {
	key := obj.Key
	name := st.Namespace + "_" + service
	i := slices.IndexFunc(st.Services, func(s Service) bool { return s.Spec.Name == name })
	if i < 0 {
		return fmt.Errorf("stack %s has no service %s", st.Name, service)
	}
	shared := false
	if j := slices.IndexFunc(st.Configs, func(o Object) bool { return o.Key == key }); j >= 0 {
		if st.Configs[j].Name != obj.Name {
			return fmt.Errorf("stack %s already has a config %s", st.Name, key)
		}
		shared = true
	}
	cs := st.Services[i].Spec.TaskTemplate.ContainerSpec
	if slices.ContainsFunc(cs.Env, func(kv string) bool { return strings.HasPrefix(kv, env+"=") }) {
		return fmt.Errorf("service %s already sets %s", name, env)
	}
	if !shared {
		st.Configs = append(st.Configs, obj)
	}
	cs.Configs = append(cs.Configs, &swarm.ConfigReference{ConfigName: obj.Name,
		File: &swarm.ConfigReferenceFileTarget{Name: target, UID: "0", GID: "0", Mode: 0o444}})
	sort.SliceStable(cs.Configs, func(i, j int) bool { return cs.Configs[i].File.Name < cs.Configs[j].File.Name })
	cs.Env = append(cs.Env, env+"="+target)
	sort.Strings(cs.Env)
	return nil
}
