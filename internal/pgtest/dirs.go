package pgtest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// maxSocketDir keeps the server's socket path, <dir>/.s.PGSQL.<port>,
// within the 107 bytes a Unix socket address holds.
const maxSocketDir = 80

// makeServerDir creates the server's directory, owned by owner when the
// server runs as another user. That user must be able to reach it, and
// temporary directories are often inside directories private to us (a
// TMPDIR of 0700), so it falls back to /tmp, which everyone can enter.
func makeServerDir(owner *account) (string, error) {
	parent := os.TempDir()
	if (owner != nil && !reachableByOthers(parent)) || len(parent) > maxSocketDir-len(dirPrefix)-12 {
		parent = "/tmp"
	}
	if owner != nil && !reachableByOthers(parent) {
		return "", fmt.Errorf("no temporary directory the %s user can reach: %s is private", owner.name, parent)
	}
	dir, err := os.MkdirTemp(parent, dirPrefix)
	if err != nil {
		return "", err
	}
	err = errors.Join(
		os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644),
		owner.chown(dir),
	)
	if err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	return dir, nil
}

// reachableByOthers reports whether every directory from dir up to the
// root lets any user pass through it.
func reachableByOthers(dir string) bool {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return false
	}
	for {
		info, err := os.Stat(dir)
		if err != nil || info.Mode().Perm()&0o001 == 0 {
			return false
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return true
		}
		dir = parent
	}
}

// removeStaleDirs removes the directories of earlier test runs whose test
// binary is gone: runs that were killed before they could clean up. Their
// servers quit when the binary died (see setProcAttrs). A directory whose
// owner file is missing or unreadable, or whose owner is alive, is left
// alone: it may belong to a run in progress.
func removeStaleDirs() {
	for _, parent := range []string{os.TempDir(), "/tmp"} {
		matches, _ := filepath.Glob(filepath.Join(parent, dirPrefix+"*"))
		for _, dir := range matches {
			b, err := os.ReadFile(filepath.Join(dir, ownerFile))
			if err != nil {
				continue
			}
			pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil || pid <= 0 || pid == os.Getpid() || processAlive(pid) || serverAlive(dir) {
				continue
			}
			os.RemoveAll(dir)
		}
	}
}

// serverAlive reports whether the server of dir may still be running: its
// postmaster.pid names a live process.
func serverAlive(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, "data", "postmaster.pid"))
	if errors.Is(err, os.ErrNotExist) {
		return false
	}
	if err != nil {
		return true
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	return err != nil || (pid > 0 && processAlive(pid))
}
