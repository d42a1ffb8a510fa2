//go:build !linux

package pgtest

import (
	"errors"
	"os"
	"os/exec"
)

// account is the system user the server runs as, when that is not us.
// Switching users is implemented for Linux only, where CI runs as root.
type account struct{}

func serverUser() (*account, error) {
	if os.Geteuid() == 0 {
		return nil, errors.New("running as root, which PostgreSQL refuses: run the tests as another user")
	}
	return nil, nil
}

func (owner *account) chown(string) error { return nil }

// setProcAttrs has nothing to set: there is no parent-death signal outside
// Linux, so a killed test run can leave its server running.
func setProcAttrs(*exec.Cmd, *account, bool) {}

// processAlive errs on the side of keeping directories: stale ones are
// only removed on Linux.
func processAlive(int) bool { return true }
