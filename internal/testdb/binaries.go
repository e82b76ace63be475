package testdb

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// binaries holds the paths of the PostgreSQL server programs.
type binaries struct {
	initdb, pgCtl, postgres string
}

// findBinaries finds initdb, pg_ctl and postgres on PATH or else in the
// highest-versioned /usr/lib/postgresql/*/bin.
func findBinaries() (binaries, error) {
	var b binaries
	var err1, err2, err3 error
	b.initdb, err1 = exec.LookPath("initdb")
	b.pgCtl, err2 = exec.LookPath("pg_ctl")
	b.postgres, err3 = exec.LookPath("postgres")
	if err1 == nil && err2 == nil && err3 == nil {
		return b, nil
	}

	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		return versionOf(dirs[i]) > versionOf(dirs[j])
	})
	for _, dir := range dirs {
		b := binaries{
			initdb:   filepath.Join(dir, "initdb"),
			pgCtl:    filepath.Join(dir, "pg_ctl"),
			postgres: filepath.Join(dir, "postgres"),
		}
		if isExecutable(b.initdb) && isExecutable(b.pgCtl) && isExecutable(b.postgres) {
			return b, nil
		}
	}
	return binaries{}, errors.New("PostgreSQL server binaries (initdb, pg_ctl, postgres) not found on PATH or under /usr/lib/postgresql/*/bin")
}

// versionOf returns the numeric version of /usr/lib/postgresql/<v>/bin, or
// -1.
func versionOf(binDir string) float64 {
	v, err := strconv.ParseFloat(filepath.Base(filepath.Dir(binDir)), 64)
	if err != nil {
		return -1
	}
	return v
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// runAs runs commands as the postgres OS user; used when the tests run as
// root.
type runAs struct {
	uid, gid int
	runuser  string // path of runuser, or "" to use su
	su       string
}

func newRunAs() (*runAs, error) {
	u, err := user.Lookup(osUser)
	if err != nil {
		return nil, fmt.Errorf("running as root, but initdb refuses to run as root and the %q OS user is unavailable: %w", osUser, err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("user %q has non-numeric uid/gid %s/%s", osUser, u.Uid, u.Gid)
	}
	as := &runAs{uid: uid, gid: gid}
	if p, err := exec.LookPath("runuser"); err == nil {
		as.runuser = p
	} else if p, err := exec.LookPath("su"); err == nil {
		as.su = p
	} else {
		return nil, fmt.Errorf("running as root, but neither runuser nor su is available to run initdb as %q", osUser)
	}
	return as, nil
}

// chownAll changes the owner of dir and everything below it to the postgres
// user.
func (as *runAs) chownAll(dir string) error {
	return filepath.WalkDir(dir, func(path string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := os.Lchown(path, as.uid, as.gid); err != nil {
			return fmt.Errorf("chown %s to %s: %w", path, osUser, err)
		}
		return nil
	})
}

// command returns the command running name with args, as the postgres user
// if as is non-nil.
func (as *runAs) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	switch {
	case as == nil:
		return exec.CommandContext(ctx, name, args...)
	case as.runuser != "":
		return exec.CommandContext(ctx, as.runuser, append([]string{"-u", osUser, "--", name}, args...)...)
	default:
		quoted := make([]string, 0, len(args)+1)
		for _, a := range append([]string{name}, args...) {
			quoted = append(quoted, shellQuote(a))
		}
		return exec.CommandContext(ctx, as.su, osUser, "-s", "/bin/sh", "-c", strings.Join(quoted, " "))
	}
}

// shellQuote quotes s for /bin/sh.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-=,:+@", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Program returns the path of the PostgreSQL client program name (pg_dump, pg_restore, psql) of the
// installation the throwaway servers run from: beside initdb (a symbolic link followed), so that a dump is
// made and restored by the server's own version, or else on PATH. The tests of backup and restore run it; it
// connects through a database URL and needs no postgres OS user.
func Program(name string) (string, error) {
	b, err := findBinaries()
	if err != nil {
		return "", err
	}
	initdb, err := filepath.EvalSymlinks(b.initdb)
	if err != nil {
		return "", err
	}
	if p := filepath.Join(filepath.Dir(initdb), name); isExecutable(p) {
		return p, nil
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%s found neither beside %s nor on PATH", name, initdb)
}
