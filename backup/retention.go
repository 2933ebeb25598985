package backup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"
)

// Policy says which complete sets to keep, as restic's forget does: the KeepLast newest; the newest set of each
// of the KeepDaily most recent days that have a set; the newest of each of the KeepWeekly most recent ISO weeks
// that have a set. A set kept by any rule is kept. Whatever the policy:
//   - the newest complete set is kept;
//   - a set in progress (no manifest, active within the grace period) is kept;
//   - a damaged set is kept, for a person to look at;
//   - a set of another key is kept (it cannot be verified here);
//   - an invalid set (not written by this tool with this key: forged, altered, downgraded, future-dated) is kept
//     and reported, unless DeleteInvalid; it never takes a keep slot, so forged sets cannot push real ones out;
//   - an incomplete set (no manifest, idle beyond the grace period: a failed run) is deleted.
//
// Only complete sets count for the rules. A policy with no rule (all zero) deletes only incomplete sets (and
// invalid ones with DeleteInvalid).
type Policy struct {
	KeepLast   int
	KeepDaily  int
	KeepWeekly int
	// Location is the time zone days and weeks are counted in (default UTC).
	Location *time.Location
	// DeleteInvalid deletes invalid sets (`backup prune --invalid`).
	DeleteInvalid bool
}

// Decision is what the policy decided for one set, and why.
type Decision struct {
	Set     SetInfo
	Keep    bool
	Reasons []string
}

func (d Decision) String() string {
	verb := "delete"
	if d.Keep {
		verb = "keep"
	}
	return fmt.Sprintf("%s %s (%s): %s", verb, d.Set.ID, d.Set.State, strings.Join(d.Reasons, ", "))
}

// Plan decides for every set (as listed, any order); the decisions come oldest first. It is pure: Prune carries
// the decisions out.
func (p Policy) Plan(sets []SetInfo) []Decision {
	loc := p.Location
	if loc == nil {
		loc = time.UTC
	}
	sorted := append([]SetInfo(nil), sets...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].ID > sorted[j].ID }) // newest first
	ds := make([]Decision, len(sorted))
	days, weeks := map[string]bool{}, map[string]bool{}
	last, newest := 0, true
	noRules := p.KeepLast <= 0 && p.KeepDaily <= 0 && p.KeepWeekly <= 0
	for i, s := range sorted {
		d := &ds[i]
		d.Set = s
		switch s.State {
		case InProgress:
			d.Keep, d.Reasons = true, []string{"still being written"}
			continue
		case Damaged:
			d.Keep, d.Reasons = true, []string{"damaged, left for inspection: " + s.Problem}
			continue
		case Incomplete:
			d.Reasons = []string{"incomplete: no manifest, idle beyond the grace period"}
			continue
		case OtherKey:
			d.Keep, d.Reasons = true, []string{"encrypted with another key, not counted: " + s.Problem}
			continue
		case Invalid:
			if p.DeleteInvalid {
				d.Reasons = []string{"invalid: " + s.Problem}
			} else {
				d.Keep, d.Reasons = true, []string{"invalid, not counted (prune --invalid deletes it): " + s.Problem}
			}
			continue
		}
		keep := func(r string) { d.Keep = true; d.Reasons = append(d.Reasons, r) }
		if newest {
			keep("newest complete set")
			newest = false
		}
		if last < p.KeepLast {
			last++
			keep(fmt.Sprintf("last %d", p.KeepLast))
		}
		t := s.Started.In(loc)
		if day := t.Format("2006-01-02"); !days[day] && len(days) < p.KeepDaily {
			days[day] = true
			keep("daily " + day)
		}
		y, w := t.ISOWeek()
		if week := fmt.Sprintf("%d-W%02d", y, w); !weeks[week] && len(weeks) < p.KeepWeekly {
			weeks[week] = true
			keep("weekly " + week)
		}
		if noRules {
			keep("no retention rule")
		}
		if !d.Keep {
			d.Reasons = []string{"not selected by the policy"}
		}
	}
	for i, j := 0, len(ds)-1; i < j; i, j = i+1, j-1 {
		ds[i], ds[j] = ds[j], ds[i]
	}
	return ds
}

// Prune deletes the sets the decisions do not keep. Each set's manifest goes first, so a set is never seen
// complete with objects missing; an interrupted prune leaves an incomplete set, which the next prune deletes.
// It returns the IDs of the sets deleted; one set's failure does not stop the others.
func Prune(ctx context.Context, s Store, prefix string, ds []Decision, log *slog.Logger) ([]string, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	prefix = normPrefix(prefix)
	var removed []string
	var errs []error
	for _, d := range ds {
		if d.Keep {
			continue
		}
		if err := removeSet(ctx, s, prefix+d.Set.ID+"/"); err != nil {
			errs = append(errs, fmt.Errorf("delete set %s: %w", d.Set.ID, err))
			continue
		}
		log.Info("backup set deleted", "set", d.Set.ID, "state", string(d.Set.State), "reason", strings.Join(d.Reasons, ", "))
		removed = append(removed, d.Set.ID)
	}
	return removed, errors.Join(errs...)
}

func removeSet(ctx context.Context, s Store, dir string) error {
	if err := s.Remove(ctx, dir+ManifestName); err != nil {
		return err
	}
	objs, err := s.List(ctx, dir)
	if err != nil {
		return err
	}
	sort.Slice(objs, func(i, j int) bool { // the started marker last: a half-deleted set still shows
		return !strings.HasSuffix(objs[i].Key, "/"+StartedName) && strings.HasSuffix(objs[j].Key, "/"+StartedName)
	})
	for _, o := range objs {
		if err := s.Remove(ctx, o.Key); err != nil {
			return err
		}
	}
	return nil
}
