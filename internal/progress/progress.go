// Package progress carries what a long operation is doing (a backup, a restore) from the code that does it to
// whoever shows it (the live view on a terminal), without either knowing the other. The operation reports events
// to its context; a caller that wants them puts a Func in the context with With. Without one, Report does
// nothing: the operation's logs are unchanged.
//
// Events travel in the context, as a trace would, so that implementations of small interfaces (a backup
// target, a server's stop and start) report their stages without a parameter of their own.
package progress

import (
	"context"
	"io"
	"time"
)

// Stages of a backup or a restore, per source (ziti, spire, keycloak) or, with Source "", of the set.
const (
	Queued   = "queued"   // the source waits for its turn
	Snapshot = "snapshot" // backup: the server's database is copied (snapshot API, VACUUM INTO, pg_dump)
	Upload   = "upload"   // backup: the copy streams to the store (Bytes so far)
	Verify   = "verify"   // backup: the stored size is checked; restore: the object decodes to its manifest's SHA-256
	Manifest = "manifest" // backup: the set's manifest is written last
	Prune    = "prune"    // backup: the retention policy
	Resolve  = "resolve"  // restore: the set is found and its manifest checked
	Recover  = "recover"  // restore: what an interrupted restore left is finished or undone
	Download = "download" // restore: the object comes from the store (Bytes of Total)
	Check    = "check"    // restore: the target checks the snapshot can be restored (format, pg_restore --list)
	Stop     = "stop"     // restore: the server is stopped
	Restore  = "restore"  // restore: the snapshot is restored (copied beside the database, pg_restore); for the set, the servers one after the other
	Swap     = "swap"     // restore: the restored database replaces the server's, while it is stopped
	Start    = "start"    // restore: the server is started again
	Health   = "health"   // restore: waiting until the server answers (Detail: the attempt)
	Set      = "set"      // the set is known (Detail: its ID)
	Lock     = "lock"     // the run waits for the tool's lock (Detail: its holder); any other event ends the wait
	Done     = "done"     // the source (or the set) is finished; Err says whether it failed
)

// Event is one thing that happened. An event of a new stage ends the source's previous stage.
type Event struct {
	Source string // ziti, spire, keycloak; "" for the set as a whole
	Stage  string // one of the stages above
	Bytes  int64  // bytes moved so far in this stage
	Total  int64  // bytes expected in this stage; 0 when unknown
	Detail string // a short note, e.g. the set's ID, "attempt 3: connection refused"
	Err    error  // with Done: the source failed
}

// Func receives events; it may be called from any goroutine and must not block.
type Func func(Event)

type funcKey struct{}
type sourceKey struct{}

// With returns a context whose operations report their events to f.
func With(ctx context.Context, f Func) context.Context { return context.WithValue(ctx, funcKey{}, f) }

// Source returns a context whose events, when they name no source, are source's.
func Source(ctx context.Context, source string) context.Context {
	return context.WithValue(ctx, sourceKey{}, source)
}

// Enabled reports whether events reported to ctx go anywhere (to skip work done only for them).
func Enabled(ctx context.Context) bool {
	f, _ := ctx.Value(funcKey{}).(Func)
	return f != nil
}

// Report passes e to the context's Func, if any.
func Report(ctx context.Context, e Event) {
	f, _ := ctx.Value(funcKey{}).(Func)
	if f == nil {
		return
	}
	if e.Source == "" {
		e.Source, _ = ctx.Value(sourceKey{}).(string)
	}
	f(e)
}

// Reader returns r, reporting e with the bytes read so far as they are read (at most every Interval, and at the
// end). Without a Func in ctx it returns r itself.
func Reader(ctx context.Context, r io.Reader, e Event) io.Reader {
	if !Enabled(ctx) {
		return r
	}
	return &reader{ctx: ctx, r: r, e: e}
}

// Interval is how often a Reader reports at most: often enough for a view redrawn every second.
const Interval = 100 * time.Millisecond

type reader struct {
	ctx  context.Context
	r    io.Reader
	e    Event
	last time.Time
}

func (r *reader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.e.Bytes += int64(n)
	if now := time.Now(); err != nil || now.Sub(r.last) >= Interval {
		r.last = now
		Report(r.ctx, r.e)
	}
	return n, err
}
