package exitcode

// Locked is the exit code of an apply that did not run, or stopped, because of the apply lock (internal/lock):
// another run held it and did not release it within ZB_LOCK_WAIT (at once with ZB_LOCK_WAIT=0), or this run
// lost it while running (it could not renew it before it expired, or another run took it over). The message
// names the holder. Nothing was written, or the writes stopped when the lock was lost; re-run apply once the
// other run is done.
const Locked = 5
