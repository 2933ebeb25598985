//go:build zbcrashhook

package calls

import "os"

// Built with -tags zbcrashhook (the crash tests' binary only): the crash hook reads its variable.
func init() { beforeWrite, afterWrite = crashHook(os.Getenv(CrashAfterWritesEnv)) }
