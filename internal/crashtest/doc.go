// Package crashtest holds the crash-safety, concurrency and fault tests of ziti-bootstrap (issue 9). They build
// the binary once and run `apply` as a subprocess against the real servers of the test bed (internal/testbed),
// under fresh names (a Keycloak realm, OpenZiti CA, signer and auth policy, SPIRE entries of its own), so that
// each test starts from nothing without disturbing other tests:
//
//   - TestCrashAtEveryWrite kills apply (SIGKILL, ZB_TEST_CRASH_AFTER_WRITES) before each of the writes of a
//     fresh run; the next apply must converge to the state of an uninterrupted run, without duplicates, and the
//     one after must make no write.
//   - TestConcurrentApplies starts two applies together: with a wait, one writes and the other then finds nothing
//     to do; with ZB_LOCK_WAIT=0 the other exits 5 naming the holder.
//   - TestDependencyLost* stop a dependency in the middle of a run (proxies in front of the real servers) or make
//     it answer badly (calls.FaultTransport, calls.FaultInterceptor): exit 3 naming it, or exit 4 for a bad
//     answer; the next run converges.
//   - TestSecretsAppearNowhere scans everything these tests produced (logs, --output json, process arguments)
//     and the image's layers for the test bed's secrets.
//
// The tests hold bedziti.ClaimSpireRoot while they run: only one test at a time may register the test bed's
// SPIRE root in the controller. There is no code here besides the tests.
package crashtest
