package ziti

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"strings"
	"time"

	"github.com/openziti/edge-api/rest_model"
)

// Quote returns s as a string literal of the controller's filter language (ZitiQL). Its grammar has the
// escapes \" \\ \f \n \r \t and no others (JSON's \u0026 is refused: "INVALID_FILTER"); every other code point,
// non-ASCII included, stands for itself, except the control characters U+0000–U+001F, which cannot be
// written at all and are left out. FilterEq handles values the controller cannot read back exactly.
func Quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\f':
			b.WriteString(`\f`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if r >= 0x20 {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

// readBack is the string the controller makes of the literal q (storage's zitiql.ParseZqlString, v0.4.31): it
// undoes "\\" before the other escapes, so that a backslash followed by n, t, … or by another backslash is read
// back as something else than was written.
func readBack(q string) string {
	t := strings.TrimSuffix(strings.TrimPrefix(q, `"`), `"`)
	t = strings.ReplaceAll(t, `\\`, `\`)
	for _, e := range [][2]string{{`\"`, `"`}, {`\f`, "\f"}, {`\n`, "\n"}, {`\r`, "\r"}, {`\t`, "\t"}, {`\\`, `\`}} {
		t = strings.ReplaceAll(t, e[0], e[1])
	}
	return t
}

// Exact reports whether the controller reads Quote(s) back as s, so that `field = Quote(s)` finds s.
func Exact(s string) bool { return readBack(Quote(s)) == s }

// FilterEq returns the filter expression `field = "value"`, e.g. FilterEq("name", "spire-ca"). For a value the
// controller cannot read back exactly (see Exact: control characters, some backslash sequences) it returns
// the broader `field contains "…"` on the longest part it can: the caller must, as it should anyway, pick
// the exact value out of what comes back.
func FilterEq(field, value string) string {
	if Exact(value) {
		return field + " = " + Quote(value)
	}
	return field + " contains " + Quote(exactPart(value))
}

// FilterIn returns the filter expression `field in ["a", "b"]`, or, when a value cannot be read back exactly, the
// FilterEq of each joined with "or".
func FilterIn(field string, values []string) string {
	q := make([]string, len(values))
	exact := true
	for i, v := range values {
		q[i] = Quote(v)
		exact = exact && Exact(v)
	}
	if exact {
		return field + " in [" + strings.Join(q, ", ") + "]"
	}
	for i, v := range values {
		q[i] = FilterEq(field, v)
	}
	return strings.Join(q, " or ")
}

// exactPart is the longest run of value free of backslashes and control characters.
func exactPart(value string) string {
	best := ""
	for _, part := range strings.FieldsFunc(value, func(r rune) bool { return r == '\\' || r < 0x20 }) {
		if len(part) > len(best) {
			best = part
		}
	}
	return best
}

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

// pageParams are the paging and filter parameters of every list call of the management API.
type pageParams interface {
	SetLimit(*int64)
	SetOffset(*int64)
	SetFilter(*string)
}

// listOf returns every object matching filter ("" for all), page by page (listAll): params makes a page's
// parameters, call sends them, page takes the items and the page's meta from the answer, and conv turns each
// item into T; null items are passed over.
func listOf[P pageParams, R, W, T any](ctx context.Context, c *Client, op, filter string, params func(context.Context) P,
	call func(P) (R, error), page func(R) ([]*W, *rest_model.Meta), conv func(*W) T) ([]T, error) {
	var out []T
	err := listAll(ctx, c, op, func(ctx context.Context, limit, offset int64) (int, *rest_model.Meta, error) {
		p := params(ctx)
		p.SetLimit(&limit)
		p.SetOffset(&offset)
		p.SetFilter(optString(filter))
		resp, err := call(p)
		if err != nil {
			return 0, nil, err
		}
		items, meta := page(resp)
		for _, d := range items {
			if d != nil {
				out = append(out, conv(d))
			}
		}
		return len(items), meta, nil
	})
	return out, err
}

// created sends a create call and returns the id of the object the controller made.
func created[R interface {
	GetPayload() *rest_model.CreateEnvelope
}](ctx context.Context, c *Client, op string, call func(context.Context) (R, error)) (string, error) {
	var id string
	err := c.do(ctx, op, func(ctx context.Context) error {
		resp, err := call(ctx)
		if err != nil {
			return err
		}
		id, err = createdID(resp.GetPayload())
		return err
	})
	return id, err
}

// fetched sends a call that reads one object and returns what conv makes of the answer (conv may refuse it).
func fetched[R, T any](ctx context.Context, c *Client, op string, call func(context.Context) (R, error),
	conv func(R) (T, error)) (T, error) {
	var out T
	err := c.do(ctx, op, func(ctx context.Context) error {
		resp, err := call(ctx)
		if err != nil {
			return err
		}
		out, err = conv(resp)
		return err
	})
	return out, err
}

// discard returns the error of a call whose answer this package does not need (an update, a patch, a delete).
func discard[R any](_ R, err error) error { return err }

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
