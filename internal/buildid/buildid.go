// Package buildid reads the Go build ID of the running executable: a hash of everything that went into it (its
// sources and embedded files, its dependencies, the toolchain and the build flags), for a cache whose entries
// hold only for the code that made them.
package buildid

import (
	"debug/elf"
	"os"
	"sync"
)

// Self is the running executable's Go build ID, read once; "" when it cannot be read (not an ELF executable, no
// Go build ID note, or the file is unreadable): a cache keyed on it is then not used.
var Self = sync.OnceValue(func() string {
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	return Read(exe)
})

// Read returns the Go build ID of the ELF executable at path ("" when it has none): the note the Go linker
// writes in the section .note.go.buildid (name "Go", type 4), as `go tool buildid` prints it.
func Read(path string) string {
	f, err := elf.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	s := f.Section(".note.go.buildid")
	if s == nil {
		return ""
	}
	b, err := s.Data()
	if err != nil || len(b) < 16 {
		return ""
	}
	bo := f.ByteOrder
	namesz, descsz, typ := bo.Uint32(b), bo.Uint32(b[4:]), bo.Uint32(b[8:])
	start := 12 + uint64(namesz+3)&^3
	if namesz != 4 || string(b[12:15]) != "Go\x00" || typ != 4 || start+uint64(descsz) > uint64(len(b)) {
		return ""
	}
	return string(b[start : start+uint64(descsz)])
}
