package testdb

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Persistent is a PostgreSQL server whose data directory outlives the program that started it: the cache of a
// benchmark whose seed takes minutes (the 10-million-event benchmark of make bench-events-10m). It is started
// from the locally installed binaries (as the postgres user when root), listens only on a Unix socket in a
// temporary directory, and runs with the settings its caller gives. Stop stops it cleanly and keeps its data.
type Persistent struct {
	s *server
	// Created is true when StartPersistent initialised the data directory (it was missing): the caller seeds.
	Created bool
}

// StartPersistent starts the server of the data directory dataDir, initialising it first when it does not
// exist, with the given settings (name=value, passed as -c options). It never uses NEXUS_TEST_POSTGRES_URL.
func StartPersistent(dataDir string, settings ...string) (_ *Persistent, err error) {
	dataDir, err = filepath.Abs(dataDir)
	if err != nil {
		return nil, err
	}
	bin, err := findBinaries()
	if err != nil {
		return nil, err
	}
	var as *runAs
	if os.Geteuid() == 0 {
		if as, err = newRunAs(); err != nil {
			return nil, err
		}
	}
	sockDir, err := os.MkdirTemp(tempBase(), "nxpgp")
	if err != nil {
		return nil, fmt.Errorf("create socket directory: %w", err)
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(sockDir)
		}
	}()
	s := newServer(bin, as, sockDir, dataDir, settings)
	if as != nil {
		if err := as.chownAll(sockDir); err != nil {
			return nil, err
		}
	}
	p := &Persistent{s: s}
	if _, statErr := os.Stat(filepath.Join(dataDir, "PG_VERSION")); errors.Is(statErr, os.ErrNotExist) {
		if err := os.MkdirAll(dataDir, 0o700); err != nil {
			return nil, fmt.Errorf("create %s: %w", dataDir, err)
		}
		if as != nil {
			if err := as.chownAll(dataDir); err != nil {
				return nil, err
			}
		}
		if out, err := s.run(bin.initdb, "-D", dataDir, "-A", "trust", "-U", osUser, "--no-sync", "-E", "UTF8", "--locale=C"); err != nil {
			return nil, fmt.Errorf("initdb (%s) failed: %w\n%s", bin.initdb, err, tail(out, 2000))
		}
		p.Created = true
	}
	if err := s.start(); err != nil {
		return nil, err
	}
	if err := s.connect(); err != nil {
		_, _ = s.run(bin.pgCtl, "stop", "-m", "fast", "-w", "-D", dataDir)
		return nil, fmt.Errorf("connect to %s: %w", dataDir, err)
	}
	return p, nil
}

// URL returns the URL of database name (postgres://…, the socket form).
func (p *Persistent) URL(name string) string { return p.s.databaseURL(name) }

// Exec runs sql on the admin database (postgres).
func (p *Persistent) Exec(sql string) error { return p.s.exec(sql) }

// LogFile is the path of the server's log (in the socket directory, removed by Stop).
func (p *Persistent) LogFile() string { return p.s.logFile }

// Stop stops the server cleanly (pg_ctl stop -m fast: a shutdown checkpoint, so the data directory is
// consistent) and removes the socket directory; the data directory stays.
func (p *Persistent) Stop() error {
	s := p.s
	s.mu.Lock()
	if s.admin != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = s.admin.Close(ctx)
		cancel()
		s.admin = nil
	}
	s.mu.Unlock()
	var errs []error
	if out, err := s.run(s.bin.pgCtl, "stop", "-m", "fast", "-w", "-t", "300", "-D", s.dataDir); err != nil {
		errs = append(errs, fmt.Errorf("stop PostgreSQL server of %s: %w\n%s", s.dataDir, err, tail(out, 2000)))
	}
	if err := os.RemoveAll(s.tempDir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
