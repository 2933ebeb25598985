package ziti

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"time"

	"github.com/openziti/edge-api/rest_model"
)

// Quote returns s as a string literal of the controller's filter language.
func Quote(s string) string {
	b, _ := json.Marshal(s) // the filter grammar's string escapes are JSON's
	return string(b)
}

// FilterEq returns the filter expression `field = "value"`, e.g. FilterEq("name", "spire-ca").
func FilterEq(field, value string) string { return field + " = " + Quote(value) }

// EqualSets reports whether a and b hold the same strings, ignoring order and repeats. The controller stores
// string lists (role attributes, identity roles, scopes, allowed signers) as sorted sets, so compare with this.
func EqualSets(a, b []string) bool {
	seen := make(map[string]bool, len(a))
	for _, s := range a {
		seen[s] = true
	}
	other := make(map[string]bool, len(b))
	for _, s := range b {
		if !seen[s] {
			return false
		}
		other[s] = true
	}
	return len(seen) == len(other)
}

// listAll fetches every page of a list call. fetch returns the number of items on the page and the page's meta.
// listNotFoundAttempts bounds how often listAll asks again for a page that answered 404.
const listNotFoundAttempts = 4

func listAll(ctx context.Context, c *Client, op string, fetch func(ctx context.Context, limit, offset int64) (int, *rest_model.Meta, error)) error {
	var offset int64
	for {
		var n int
		var meta *rest_model.Meta
		var err error
		// A list answering 404 saw an object deleted while it was listed (the controller loads each listed
		// object after its query): another writer's delete, not an absent collection. Ask again.
		for attempt, pause := 1, 100*time.Millisecond; ; attempt, pause = attempt+1, 2*pause {
			err = c.do(ctx, op, func(ctx context.Context) error {
				var err error
				n, meta, err = fetch(ctx, c.pageSize, offset)
				return err
			})
			if err == nil || !IsNotFound(err) || attempt == listNotFoundAttempts {
				break
			}
			select {
			case <-ctx.Done():
				return err
			case <-time.After(pause):
			}
		}
		if err != nil {
			return err
		}
		offset += int64(n)
		if n == 0 {
			return nil
		}
		if meta != nil && meta.Pagination != nil && meta.Pagination.TotalCount != nil {
			if offset >= *meta.Pagination.TotalCount {
				return nil
			}
			continue
		}
		if int64(n) < c.pageSize {
			return nil
		}
	}
}

func createdID(env *rest_model.CreateEnvelope) (string, error) {
	if env == nil || env.Data == nil || env.Data.ID == "" {
		return "", fmt.Errorf("the controller answered without the new object's id")
	}
	return env.Data.ID, nil
}

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func boolean(p *bool) bool { return p != nil && *p }

func roles(r []string) rest_model.Roles {
	if r == nil {
		return rest_model.Roles{} // the controller wants a list, not null
	}
	return rest_model.Roles(r)
}

func attributes(a []string) *rest_model.Attributes {
	if a == nil {
		a = []string{}
	}
	v := rest_model.Attributes(a)
	return &v
}

func tagsToWire(t map[string]any) *rest_model.Tags {
	if t == nil {
		t = map[string]any{}
	}
	return &rest_model.Tags{SubTags: rest_model.SubTags(t)}
}

func tagsFromWire(t *rest_model.Tags) map[string]any {
	if t == nil || len(t.SubTags) == 0 {
		return nil
	}
	return map[string]any(t.SubTags)
}

func nameOr(name, id string) string {
	if name != "" {
		return name
	}
	return id
}

func newKey() (*ecdsa.PrivateKey, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) }
