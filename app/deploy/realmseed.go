package deploy

import (
	"fmt"

	"github.com/ziti-bootstrap/ziti-bootstrap/app"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/stacks"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps/keycloakrealm"
)

// The realm file Keycloak imports at its first start (stacks/keycloak.yml: kc.sh start --import-realm when
// RealmSeedVar is set): /opt/keycloak/data/import/<realm>-realm.json, config <namespace>_keycloak-realm-seed-<realm>.
const (
	keycloakService = "keycloak"
	// realmSeedKey + the realm's name is the config's key: another realm is another file
	realmSeedKey = "keycloak-realm-seed-"
	// realmSeedDir holds the file, named <realm>-realm.json (Keycloak refuses to start on another name)
	realmSeedDir = "/opt/keycloak/data/import/"
	// RealmSeedVar is set in Keycloak's environment to the file's path.
	RealmSeedVar = "ZB_KC_REALM_IMPORT"
)

// AddRealmSeed ships to the keycloak service of st (when st has it) the realm the bootstrap job declares, as a
// file Keycloak imports when it starts with no realm of that name (keycloakrealm.ImportFile): the job's first
// run then finds the realm, its client and mappers, instead of creating them on a server that has just started.
// The config is a seed (stacks.AddSeedConfig): a later change of the declaration leaves it, and Keycloak, as they
// are; the job converges the change. The declaration is read from vars as the job reads it; its problems name
// the variables, as apply would.
func AddRealmSeed(st *stacks.Stack, vars map[string]string) error {
	if !st.HasService(keycloakService) {
		return nil
	}
	cfg, err := config.StackRealm(vars)
	if err != nil {
		return err
	}
	data, err := keycloakrealm.ImportFile(app.RealmDeclaration(cfg))
	if err != nil {
		return &config.Error{Problems: []config.Problem{{Var: app.RealmVars, Msg: err.Error()}}}
	}
	key := realmSeedKey + cfg.Keycloak.Realm // the declaration's check let only letters, digits, '.', '_' and '-' in
	if len(st.Namespace)+1+len(key) > stacks.MaxObjectName {
		return nil // a realm name too long for a config's: not seeded, the job creates the realm
	}
	if err := st.AddSeedConfig(keycloakService, key, realmSeedDir+cfg.Keycloak.Realm+"-realm.json", RealmSeedVar, data); err != nil {
		return fmt.Errorf("Keycloak's realm file: %w", err)
	}
	return nil
}
