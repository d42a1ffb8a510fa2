package pgtest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// errNotInstalled means no PostgreSQL binaries were found: tests skip
// rather than fail, outside CI.
var errNotInstalled = errors.New("initdb and postgres not found in PATH or /usr/lib/postgresql/*/bin")

// binaries are the PostgreSQL programs the server needs, from one
// installation.
type binaries struct {
	initdb, postgres string
	// version is the major version; 0 if unknown.
	version int
}

// debianRoot holds one bin directory per installed major version, which
// Debian and Ubuntu do not put in PATH.
const debianRoot = "/usr/lib/postgresql"

// findBinaries looks for initdb in PATH and then in the newest of
// /usr/lib/postgresql/<version>/bin, and takes postgres from the directory
// initdb really lives in, so that the two always come from one version.
func findBinaries() (binaries, error) {
	var dirs []string
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			dirs = append(dirs, filepath.Dir(real))
		}
	}
	dirs = append(dirs, debianBinDirs()...)
	for _, dir := range dirs {
		b := binaries{
			initdb:   filepath.Join(dir, "initdb"),
			postgres: filepath.Join(dir, "postgres"),
		}
		if isExecutable(b.initdb) && isExecutable(b.postgres) {
			b.version = majorVersion(b.postgres)
			return b, nil
		}
	}
	return binaries{}, errNotInstalled
}

// debianBinDirs lists /usr/lib/postgresql/<version>/bin, newest first.
func debianBinDirs() []string {
	entries, err := os.ReadDir(debianRoot)
	if err != nil {
		return nil
	}
	var versions []int
	for _, e := range entries {
		if v, err := strconv.Atoi(e.Name()); err == nil && e.IsDir() {
			versions = append(versions, v)
		}
	}
	slices.Sort(versions)
	slices.Reverse(versions)
	var dirs []string
	for _, v := range versions {
		dirs = append(dirs, filepath.Join(debianRoot, strconv.Itoa(v), "bin"))
	}
	return dirs
}

// majorVersion asks postgres for its version ("postgres (PostgreSQL)
// 15.18 (Debian 15.18-0+deb12u1)") and returns the major one, 15; 0 if the
// answer is not understood.
func majorVersion(postgres string) int {
	out, err := exec.Command(postgres, "--version").Output()
	if err != nil {
		return 0
	}
	_, rest, ok := strings.Cut(string(out), "(PostgreSQL) ")
	if !ok {
		return 0
	}
	end := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' })
	if end < 0 {
		end = len(rest)
	}
	v, err := strconv.Atoi(rest[:end])
	if err != nil {
		return 0
	}
	return v
}

func isExecutable(path string) bool {
	info, err := os.Stat(path)
	return err == nil && info.Mode().IsRegular() && info.Mode().Perm()&0o111 != 0
}

func (b binaries) String() string {
	return fmt.Sprintf("%s (version %d)", filepath.Dir(b.initdb), b.version)
}
