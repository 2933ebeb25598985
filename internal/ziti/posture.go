package ziti

import (
	"context"
	"fmt"

	"github.com/openziti/edge-api/rest_management_api_client/posture_checks"
	"github.com/openziti/edge-api/rest_model"
)

// Posture check types this package creates and updates. Lists also return checks of other types (DOMAIN, MFA,
// PROCESS, PROCESS_MULTI) with Type set and no type-specific fields.
const (
	PostureCheckOS  = "OS"  // the endpoint's operating system and version
	PostureCheckMAC = "MAC" // one of the endpoint's MAC addresses
)

// OperatingSystems the controller knows (OperatingSystem.Type).
var OperatingSystems = []string{"Windows", "WindowsServer", "Android", "iOS", "Linux", "macOS"}

// PostureCheck is a condition on the endpoint that service policies can require (postureCheckRoles).
type PostureCheck struct {
	ID             string
	Name           string
	Type           string // PostureCheckOS or PostureCheckMAC (others are listed, not written)
	RoleAttributes []string
	// OperatingSystems (type OS): any one must match.
	OperatingSystems []OperatingSystem
	// MACAddresses (type MAC): any one must match. The controller stores them as 12 lower-case hex digits
	// without separators; see NormalizeMAC.
	MACAddresses []string
	Tags         map[string]any
}

// OperatingSystem is one accepted operating system of an OS posture check.
type OperatingSystem struct {
	Type     string   // one of OperatingSystems
	Versions []string // semantic-version ranges such as ">=10.0.19041"; empty accepts every version
}

// ListPostureChecks returns every posture check matching filter ("" for all).
func (c *Client) ListPostureChecks(ctx context.Context, filter string) ([]PostureCheck, error) {
	var out []PostureCheck
	err := listAll(ctx, c, "list posture checks", func(ctx context.Context, limit, offset int64) (int, *rest_model.Meta, error) {
		p := posture_checks.NewListPostureChecksParamsWithContext(ctx)
		p.Limit, p.Offset = &limit, &offset
		p.Filter = optString(filter)
		resp, err := c.mgmt.PostureChecks.ListPostureChecks(p, c.session())
		if err != nil {
			return 0, nil, err
		}
		data := resp.Payload.Data()
		for _, d := range data {
			if d != nil {
				out = append(out, postureFromWire(d))
			}
		}
		return len(data), resp.Payload.Meta, nil
	})
	return out, err
}

// CreatePostureCheck creates pc (type OS or MAC) and returns its id.
func (c *Client) CreatePostureCheck(ctx context.Context, pc PostureCheck) (string, error) {
	return created(ctx, c, "create posture check "+pc.Name, func(ctx context.Context) (*posture_checks.CreatePostureCheckCreated, error) {
		body, err := postureCreate(pc)
		if err != nil {
			return nil, err
		}
		p := posture_checks.NewCreatePostureCheckParamsWithContext(ctx)
		p.PostureCheck = body
		return c.mgmt.PostureChecks.CreatePostureCheck(p, c.session())
	})
}

// UpdatePostureCheck replaces Name, RoleAttributes, Tags and the type's fields of posture check id. The type
// must be the check's own: the controller cannot change a check's type.
func (c *Client) UpdatePostureCheck(ctx context.Context, id string, pc PostureCheck) error {
	return c.do(ctx, "update posture check "+nameOr(pc.Name, id), func(ctx context.Context) error {
		var body rest_model.PostureCheckUpdate
		switch pc.Type {
		case PostureCheckOS:
			body = withPostureFields(&rest_model.PostureCheckOperatingSystemUpdate{OperatingSystems: osToWire(pc.OperatingSystems)}, &pc)
		case PostureCheckMAC:
			body = withPostureFields(&rest_model.PostureCheckMacAddressUpdate{MacAddresses: list(pc.MACAddresses)}, &pc)
		default:
			return unsupportedPosture(pc.Type)
		}
		p := posture_checks.NewUpdatePostureCheckParamsWithContext(ctx).WithID(id)
		p.PostureCheck = body
		return discard(c.mgmt.PostureChecks.UpdatePostureCheck(p, c.session()))
	})
}

// DeletePostureCheck removes posture check id.
func (c *Client) DeletePostureCheck(ctx context.Context, id string) error {
	return c.do(ctx, "delete posture check "+id, func(ctx context.Context) error {
		p := posture_checks.NewDeletePostureCheckParamsWithContext(ctx).WithID(id)
		return discard(c.mgmt.PostureChecks.DeletePostureCheck(p, c.session()))
	})
}

// NormalizeMAC returns mac as the controller stores it (lower-case hex digits, separators removed), and
// whether it is a MAC address (12 hex digits, optionally separated by ':', '-' or '.').
func NormalizeMAC(mac string) (string, bool) {
	out := make([]byte, 0, 12)
	for i := 0; i < len(mac); i++ {
		ch := mac[i]
		switch {
		case ch >= '0' && ch <= '9', ch >= 'a' && ch <= 'f':
			out = append(out, ch)
		case ch >= 'A' && ch <= 'F':
			out = append(out, ch+'a'-'A')
		case ch == ':' || ch == '-' || ch == '.':
		default:
			return "", false
		}
	}
	return string(out), len(out) == 12
}

func postureCreate(pc PostureCheck) (rest_model.PostureCheckCreate, error) {
	switch pc.Type {
	case PostureCheckOS:
		return withPostureFields(&rest_model.PostureCheckOperatingSystemCreate{OperatingSystems: osToWire(pc.OperatingSystems)}, &pc), nil
	case PostureCheckMAC:
		return withPostureFields(&rest_model.PostureCheckMacAddressCreate{MacAddresses: list(pc.MACAddresses)}, &pc), nil
	}
	return nil, unsupportedPosture(pc.Type)
}

// withPostureFields sets on body, a create or an update of any posture check type, the fields all types have.
func withPostureFields[B interface {
	SetName(*string)
	SetRoleAttributes(*rest_model.Attributes)
	SetTags(*rest_model.Tags)
}](body B, pc *PostureCheck) B {
	body.SetName(&pc.Name)
	body.SetRoleAttributes(attributes(pc.RoleAttributes))
	body.SetTags(tagsToWire(pc.Tags))
	return body
}

func unsupportedPosture(typ string) error {
	return fmt.Errorf("posture check type %q is not supported (use %s or %s)", typ, PostureCheckOS, PostureCheckMAC)
}

func osToWire(in []OperatingSystem) []*rest_model.OperatingSystem {
	out := make([]*rest_model.OperatingSystem, 0, len(in))
	for _, o := range in {
		t := rest_model.OsType(o.Type)
		out = append(out, &rest_model.OperatingSystem{Type: &t, Versions: list(o.Versions)})
	}
	return out
}

func postureFromWire(d rest_model.PostureCheckDetail) PostureCheck {
	out := PostureCheck{ID: str(d.ID()), Name: str(d.Name()), Type: d.TypeID(), Tags: tagsFromWire(d.Tags())}
	if a := d.RoleAttributes(); a != nil {
		out.RoleAttributes = []string(*a)
	}
	switch x := d.(type) {
	case *rest_model.PostureCheckOperatingSystemDetail:
		out.Type = PostureCheckOS
		for _, o := range x.OperatingSystems {
			if o == nil {
				continue
			}
			out.OperatingSystems = append(out.OperatingSystems, OperatingSystem{Type: enumStr(o.Type), Versions: o.Versions})
		}
	case *rest_model.PostureCheckMacAddressDetail:
		out.Type = PostureCheckMAC
		out.MACAddresses = x.MacAddresses
	}
	return out
}
