// Package crashtest holds the crash-safety, concurrency and fault tests of ziti-bootstrap (issue 9). They build
// the binary once and run `apply` as a subprocess against the real servers of the test bed (internal/testbed),
// under fresh names (a Keycloak realm, OpenZiti CA, signer and auth policy, SPIRE entries of its own), so that
// each test starts from nothing without disturbing other tests:
//
//   - TestCrashAtEveryWrite kills apply (SIGKILL, ZB_TEST_CRASH_AFTER_WRITES) before each of the writes of a
//     fresh run; the next apply must converge to the state of an uninterrupted run, without duplicates, and the
//     one after must make no write.
//   - TestCrashInPolicies does the same for the ziti/policies step (POLICIES_FILE: the example policy file, under
//     this test's names) on a converged system, at a spread of its writes; TestCrashDuringReconvergence for
//     an apply that moves a converged system from configuration A to a changed B (policy file, SPIRE entry,
//     CA roles, Keycloak redirect URIs, identity claim). Both check every OpenZiti object the files make.
//   - TestConcurrentApplies starts two applies together: with a wait, one writes and the other then finds nothing
//     to do; with ZB_LOCK_WAIT=0 the other exits 5 naming the holder.
//   - TestDependencyLost* stop a dependency in the middle of a run (proxies in front of the real servers) or make
//     it answer badly (callfaults.FaultTransport, callfaults.FaultInterceptor): exit 3 naming it, or exit 4 for a bad
//     answer; the next run converges. TestPolicyFaults does the same to the OpenZiti controller in the middle
//     of ziti/policies (its proxy terminates TLS with a certificate the runs pin).
//   - TestSecretsAppearNowhere scans everything these tests produced (logs, --output json, process arguments)
//     and the image's layers for the test bed's secrets.
//
// The tests hold bedziti.ClaimSpireRoot while they run: only one test at a time may register the test bed's
// SPIRE root in the controller. There is no code here besides the tests.
package crashtest
