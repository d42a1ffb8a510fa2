//go:build !linux

package pgtest

import "os"

// fileOwner is not checked outside Linux, where the server never runs as
// another user.
func fileOwner(os.FileInfo) int { return -1 }
