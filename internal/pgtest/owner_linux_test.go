package pgtest

import (
	"os"
	"syscall"
)

func fileOwner(info os.FileInfo) int {
	return int(info.Sys().(*syscall.Stat_t).Uid)
}
