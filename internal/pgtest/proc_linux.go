package pgtest

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"syscall"
)

// account is the system user the server runs as, when that is not us.
type account struct {
	name     string
	uid, gid uint32
}

// serverUser returns the account to run PostgreSQL as: nil, meaning this
// process's own, unless we are root, which PostgreSQL refuses to run as;
// then the postgres system user that Debian's package creates.
func serverUser() (*account, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, which PostgreSQL refuses, and there is no postgres user to run it as (apt-get install postgresql creates one): %w", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("postgres user: uid %q: %w", u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("postgres user: gid %q: %w", u.Gid, err)
	}
	return &account{name: u.Username, uid: uint32(uid), gid: uint32(gid)}, nil
}

// chown gives path to owner, if there is one.
func (owner *account) chown(path string) error {
	if owner == nil {
		return nil
	}
	return os.Chown(path, int(owner.uid), int(owner.gid))
}

// setProcAttrs makes cmd run as owner, if not nil, with no supplementary
// groups. The server process (server true) is also sent SIGQUIT, an
// immediate shutdown, when the test binary dies, so that a crashed or
// killed test run leaves no server behind. The kernel clears that setting
// when the process changes user, but Go applies it after the change.
func setProcAttrs(cmd *exec.Cmd, owner *account, server bool) {
	attr := &syscall.SysProcAttr{}
	if owner != nil {
		attr.Credential = &syscall.Credential{Uid: owner.uid, Gid: owner.gid, Groups: []uint32{}}
	}
	if server {
		attr.Pdeathsig = syscall.SIGQUIT
	}
	cmd.SysProcAttr = attr
}

// processAlive reports whether a process with this PID exists. EPERM
// means it exists but belongs to someone else.
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || err == syscall.EPERM
}
