package spire

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	entryv1 "github.com/spiffe/spire-api-sdk/proto/spire/api/server/entry/v1"
	"github.com/spiffe/spire-api-sdk/proto/spire/api/types"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Entry is a registration entry. SPIFFE IDs are full URIs ("spiffe://td/path").
type Entry struct {
	// ID is the entry ID. On create it may be chosen by the caller (at most 255 characters of
	// [A-Za-z0-9._-]); the server picks a random one when it is empty.
	ID            string
	SpiffeID      string
	ParentID      string
	Selectors     []Selector
	X509SVIDTTL   int32 // seconds; 0 = the server's default_x509_svid_ttl
	JWTSVIDTTL    int32 // seconds; 0 = the server's default_jwt_svid_ttl
	DNSNames      []string
	FederatesWith []string // trust domain names, e.g. "other.org"
	Admin         bool
	Downstream    bool
	Hint          string
}

// Selector is one selector, written "type:value" (e.g. "docker:label:app:ziti-router" is type "docker",
// value "label:app:ziti-router").
type Selector struct {
	Type  string
	Value string
}

func (s Selector) String() string { return s.Type + ":" + s.Value }

// ParseSelector splits "type:value" at the first colon. Both parts must be non-empty.
func ParseSelector(s string) (Selector, error) {
	typ, value, ok := strings.Cut(s, ":")
	switch {
	case !ok:
		return Selector{}, fmt.Errorf("selector %q has no colon; write it as TYPE:VALUE, e.g. docker:label:app:ziti-router", s)
	case typ == "" || strings.TrimSpace(typ) != typ || strings.ContainsAny(typ, " \t"):
		return Selector{}, fmt.Errorf("selector %q: the type before the first colon must be a non-empty word without spaces, e.g. docker", s)
	case value == "":
		return Selector{}, fmt.Errorf("selector %q: the value after %q is empty; write it as TYPE:VALUE, e.g. docker:label:app:ziti-router", s, typ+":")
	}
	return Selector{Type: typ, Value: value}, nil
}

// SortSelectors sorts selectors by type, then value: the order SPIRE compares them in.
func SortSelectors(s []Selector) {
	slices.SortFunc(s, func(a, b Selector) int {
		if c := strings.Compare(a.Type, b.Type); c != 0 {
			return c
		}
		return strings.Compare(a.Value, b.Value)
	})
}

// ItemError is the server's verdict on one item of a batch.
type ItemError struct {
	Op      string // "create entry", "update entry", "delete entry"
	Item    string // the entry ID, or the SPIFFE ID when the entry has none
	Code    codes.Code
	Message string
	// ExistingID is set on AlreadyExists from create: the ID of the entry with the same SPIFFE ID, parent ID
	// and selectors that the server already has.
	ExistingID string
}

func (e *ItemError) Error() string {
	s := fmt.Sprintf("%s %s: %s: %s", e.Op, e.Item, e.Code, e.Message)
	if e.ExistingID != "" {
		s += fmt.Sprintf(" (existing entry ID %s)", e.ExistingID)
	}
	return s
}

// GRPCStatus lets status.Code and status.FromError see the code.
func (e *ItemError) GRPCStatus() *status.Status { return status.New(e.Code, e.Message) }

// IsAlreadyExists reports whether err says the entry (or a similar one) already exists.
func IsAlreadyExists(err error) bool { return codeOf(err) == codes.AlreadyExists }

// IsNotFound reports whether err says the entry does not exist.
func IsNotFound(err error) bool { return codeOf(err) == codes.NotFound }

func codeOf(err error) codes.Code {
	var ie *ItemError
	if errors.As(err, &ie) {
		return ie.Code
	}
	return status.Code(err)
}

// ListEntries returns every registration entry on the server, reading all pages.
func (c *Client) ListEntries(ctx context.Context) ([]Entry, error) {
	return listPages(c, "list entries", func(token string) ([]Entry, string, error) {
		resp, err := c.entry.ListEntries(ctx, &entryv1.ListEntriesRequest{PageSize: PageSize, PageToken: token})
		if err != nil {
			return nil, "", err
		}
		var out []Entry
		for _, e := range resp.GetEntries() {
			out = append(out, fromProto(e))
		}
		return out, resp.GetNextPageToken(), nil
	})
}

// BatchCreate creates entries and returns one error per entry, in order (nil: created). An entry with the same
// SPIFFE ID, parent ID and selectors as an existing one is not created; its error satisfies IsAlreadyExists and
// names the existing entry's ID (ItemError.ExistingID).
func (c *Client) BatchCreate(ctx context.Context, entries []Entry) []error {
	errs, idx, req := toRequest("create", entries, false)
	c.chunked("create", errs, idx, func(i int) string { return itemName(entries[i]) }, func(lo, hi int) ([]*types.Status, []string, error) {
		resp, err := c.entry.BatchCreateEntry(ctx, &entryv1.BatchCreateEntryRequest{Entries: req[lo:hi], OutputMask: &types.EntryMask{}})
		if err != nil {
			return nil, nil, err
		}
		ids := make([]string, len(resp.GetResults()))
		for i, r := range resp.GetResults() {
			ids[i] = r.GetEntry().GetId()
		}
		return statuses(resp.GetResults()), ids, nil
	})
	return errs
}

// BatchUpdate updates entries by ID and returns one error per entry, in order (nil: updated). Every field Entry
// carries is written; fields it does not carry (expiry, store_svid) are left as they are. A missing entry gives
// an error satisfying IsNotFound.
func (c *Client) BatchUpdate(ctx context.Context, entries []Entry) []error {
	errs, idx, req := toRequest("update", entries, true)
	mask := &types.EntryMask{
		SpiffeId: true, ParentId: true, Selectors: true, X509SvidTtl: true, JwtSvidTtl: true,
		DnsNames: true, FederatesWith: true, Admin: true, Downstream: true, Hint: true,
	}
	c.chunked("update", errs, idx, func(i int) string { return itemName(entries[i]) }, func(lo, hi int) ([]*types.Status, []string, error) {
		resp, err := c.entry.BatchUpdateEntry(ctx, &entryv1.BatchUpdateEntryRequest{Entries: req[lo:hi], InputMask: mask, OutputMask: &types.EntryMask{}})
		if err != nil {
			return nil, nil, err
		}
		return statuses(resp.GetResults()), nil, nil
	})
	return errs
}

// BatchDelete deletes entries by ID and returns one error per ID, in order (nil: deleted). An unknown ID gives an
// error satisfying IsNotFound.
func (c *Client) BatchDelete(ctx context.Context, ids []string) []error {
	errs := make([]error, len(ids))
	idx := make([]int, len(ids))
	for i := range ids {
		idx[i] = i
	}
	c.chunked("delete", errs, idx, func(i int) string { return ids[i] }, func(lo, hi int) ([]*types.Status, []string, error) {
		resp, err := c.entry.BatchDeleteEntry(ctx, &entryv1.BatchDeleteEntryRequest{Ids: ids[lo:hi]})
		if err != nil {
			return nil, nil, err
		}
		return statuses(resp.GetResults()), nil, nil
	})
	return errs
}

// toRequest converts entries for a batch request of op ("create", "update"). req holds the entries that convert
// and idx their positions in entries; each entry that does not convert (or, with needID, has no ID) gets an
// InvalidArgument *ItemError in errs, which has one slot per entry.
func toRequest(op string, entries []Entry, needID bool) (errs []error, idx []int, req []*types.Entry) {
	errs = make([]error, len(entries))
	for i, e := range entries {
		pe, err := toProto(e)
		if err == nil && needID && e.ID == "" {
			err = errors.New("the entry has no ID")
		}
		if err != nil {
			errs[i] = &ItemError{Op: op + " entry", Item: itemName(e), Code: codes.InvalidArgument, Message: err.Error()}
			continue
		}
		idx = append(idx, i)
		req = append(req, pe)
	}
	return errs, idx, req
}

// statuses are the per-item statuses of a batch answer.
func statuses[R interface{ GetStatus() *types.Status }](results []R) []*types.Status {
	st := make([]*types.Status, len(results))
	for i, r := range results {
		st[i] = r.GetStatus()
	}
	return st
}

// chunked sends the request items of a batch op ("create", "update", "delete") in chunks of BatchSize. Item j of
// the request is item idx[j] of the caller, named item(idx[j]) in errors. call sends items [lo,hi) and returns
// their statuses (and, for creates, the entry IDs of the results). An item whose status is not OK gets an
// *ItemError in errs[idx[j]]; for AlreadyExists it names the existing entry. When a call fails as a whole, that
// chunk and all later ones get the call's error: the connection or the server is broken, and more calls would
// only fail the same way.
func (c *Client) chunked(op string, errs []error, idx []int, item func(i int) string,
	call func(lo, hi int) ([]*types.Status, []string, error)) {
	n := len(idx)
	for lo := 0; lo < n; lo += BatchSize {
		hi := min(lo+BatchSize, n)
		sts, ids, err := call(lo, hi)
		if err == nil && len(sts) != hi-lo {
			err = fmt.Errorf("the server answered %d results for %d items", len(sts), hi-lo)
		}
		if err != nil {
			err = c.wrap(op+" entries", err)
			for j := lo; j < n; j++ {
				errs[idx[j]] = err
			}
			return
		}
		for j, st := range sts {
			code := codes.Code(st.GetCode())
			if code == codes.OK {
				continue
			}
			i := idx[lo+j]
			ie := &ItemError{Op: op + " entry", Item: item(i), Code: code, Message: st.GetMessage()}
			if code == codes.AlreadyExists && ids != nil {
				ie.ExistingID = ids[j]
			}
			errs[i] = ie
		}
	}
}

func itemName(e Entry) string {
	if e.ID != "" {
		return e.ID
	}
	return e.SpiffeID
}

func toProto(e Entry) (*types.Entry, error) {
	id, err := protoID(e.SpiffeID)
	if err != nil {
		return nil, fmt.Errorf("SPIFFE ID: %w", err)
	}
	parent, err := protoID(e.ParentID)
	if err != nil {
		return nil, fmt.Errorf("parent ID: %w", err)
	}
	sel := make([]*types.Selector, len(e.Selectors))
	for i, s := range e.Selectors {
		sel[i] = &types.Selector{Type: s.Type, Value: s.Value}
	}
	return &types.Entry{
		Id:            e.ID,
		SpiffeId:      id,
		ParentId:      parent,
		Selectors:     sel,
		X509SvidTtl:   e.X509SVIDTTL,
		JwtSvidTtl:    e.JWTSVIDTTL,
		DnsNames:      slices.Clone(e.DNSNames),
		FederatesWith: slices.Clone(e.FederatesWith),
		Admin:         e.Admin,
		Downstream:    e.Downstream,
		Hint:          e.Hint,
	}, nil
}

func fromProto(p *types.Entry) Entry {
	e := Entry{
		ID:            p.GetId(),
		SpiffeID:      idString(p.GetSpiffeId()),
		ParentID:      idString(p.GetParentId()),
		X509SVIDTTL:   p.GetX509SvidTtl(),
		JWTSVIDTTL:    p.GetJwtSvidTtl(),
		DNSNames:      p.GetDnsNames(),
		FederatesWith: p.GetFederatesWith(),
		Admin:         p.GetAdmin(),
		Downstream:    p.GetDownstream(),
		Hint:          p.GetHint(),
	}
	for _, s := range p.GetSelectors() {
		e.Selectors = append(e.Selectors, Selector{Type: s.GetType(), Value: s.GetValue()})
	}
	return e
}
