// Package layering holds no code: its test checks the import graph of the module, floor by floor. The clients of
// external systems (the lowest floor) depend on neither the configuration package nor the steps; the steps do
// not depend on the composition root (package app), which sits above them, below the commands.
package layering
