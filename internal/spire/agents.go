package spire

import (
	"context"
	"fmt"
	"time"

	agentv1 "github.com/spiffe/spire-api-sdk/proto/spire/api/server/agent/v1"
)

// Agent is an attested SPIRE agent.
type Agent struct {
	ID              string    `json:"id"` // spiffe://TD/spire/agent/<attestor>/<…>; with x509pop in the Swarm, …/x509pop/<node ID>
	AttestationType string    `json:"attestationType"`
	SVIDExpires     time.Time `json:"svidExpires"`
	Banned          bool      `json:"banned"`
}

// ListAgents returns every attested agent, reading all pages.
func (c *Client) ListAgents(ctx context.Context) ([]Agent, error) {
	return listPages(c, "list agents", func(token string) ([]Agent, string, error) {
		resp, err := c.agent.ListAgents(ctx, &agentv1.ListAgentsRequest{PageSize: PageSize, PageToken: token})
		if err != nil {
			return nil, "", err
		}
		var out []Agent
		for _, a := range resp.GetAgents() {
			out = append(out, Agent{ID: idString(a.GetId()), AttestationType: a.GetAttestationType(), Banned: a.GetBanned(),
				SVIDExpires: time.Unix(a.GetX509SvidExpiresAt(), 0).UTC()})
		}
		return out, resp.GetNextPageToken(), nil
	})
}

// listPages reads every page of a paged list call: page returns the items of the page of token and the next
// token ("" after the last page).
func listPages[T any](c *Client, op string, page func(token string) ([]T, string, error)) ([]T, error) {
	var out []T
	token := ""
	for n := 1; ; n++ {
		items, next, err := page(token)
		if err != nil {
			return nil, c.wrap(fmt.Sprintf("%s (page %d)", op, n), err)
		}
		out = append(out, items...)
		if next == "" || len(items) == 0 {
			return out, nil
		}
		if next == token {
			return nil, fmt.Errorf("SPIRE server at %s: %s: the server returned the same page token %q twice", c.target, op, next)
		}
		token = next
	}
}
