package keycloak

import (
	_ "embed"
	"encoding/json"
	"fmt"
)

// defaultUserProfile is Keycloak 26.4.7's default user profile (keycloak-services,
// org/keycloak/userprofile/config/keycloak-default-user-profile.json): what a new realm gets when its
// representation carries none. TestEmbeddedDefaultUserProfileIsKeycloaks compares it with a new realm's on the
// test bed's Keycloak.
//
//go:embed default-user-profile.json
var defaultUserProfile []byte

// userProfileType and userProfileConfig are the component type of a realm's declarative user profile and the
// config key holding its JSON (Keycloak 24+).
const (
	userProfileType   = "org.keycloak.userprofile.UserProfileProvider"
	userProfileConfig = "kc.user.profile.config"
)

// ImportJSON renders r as a realm file for Keycloak's import at its start (kc.sh start --import-realm, a file in
// /opt/keycloak/data/import): the representation CreateRealm sends, with r's clients, their protocol mappers and
// its key providers, and a user profile (Keycloak's default one with profile declared on it, as
// PutUserProfileAttribute declares an attribute) when profile is not empty. It makes no call. A client with a
// secret is refused: the file is a Swarm config, which anyone who can list configs may read.
func ImportJSON(r Realm, profile ...UserProfileAttribute) ([]byte, error) {
	if err := checkName("realm", r.Name); err != nil {
		return nil, err
	}
	for _, c := range r.Clients {
		if c.Secret.IsSet() {
			return nil, fmt.Errorf("keycloak: realm %s: client %s has a secret: it cannot be in an import file", r.Name, c.ClientID)
		}
	}
	rep := realmRep(r)
	if len(profile) > 0 {
		var doc map[string]any
		if err := json.Unmarshal(defaultUserProfile, &doc); err != nil {
			return nil, fmt.Errorf("keycloak: default user profile: %w", err)
		}
		declareProfileAttrs(doc, profile...)
		up, err := json.Marshal(doc)
		if err != nil {
			return nil, err
		}
		comps, _ := rep.Components.(map[string][]map[string]any)
		if comps == nil {
			comps = map[string][]map[string]any{}
		}
		comps[userProfileType] = []map[string]any{{"providerId": "declarative-user-profile", "subComponents": map[string]any{},
			"config": map[string][]string{userProfileConfig: {string(up)}}}}
		rep.Components = comps
	}
	return json.MarshalIndent(rep, "", "  ")
}

// DefaultUserProfile is the default user profile an import file's profile starts from (Keycloak 26.4.7's).
func DefaultUserProfile() []byte { return append([]byte(nil), defaultUserProfile...) }
