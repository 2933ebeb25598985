package s3store

import "syscall"

// allocPart returns a part buffer outside the Go heap (anonymous mmap). Part buffers live as long as the client
// and are reused; kept off the heap, they do not raise the garbage collector's target, so the small garbage of
// each request is collected at a few MiB instead of being allowed to grow as large as the buffers themselves.
// Pages become resident only as they are first filled.
func allocPart(n int64) []byte {
	b, err := syscall.Mmap(-1, 0, int(n), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return make([]byte, n)
	}
	return b
}
