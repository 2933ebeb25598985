package backuptest

import "testing"

func TestMemStore(t *testing.T) { StoreSuite(t, NewMemStore(), "suite/", 1<<20) }
