package testdb

import (
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Server is a throwaway PostgreSQL server for a program that is not a test: the load harness (cmd/loadtest). It
// is started like the tests' servers, from the locally installed binaries (as the postgres user when root),
// listening only on a Unix socket in a temporary directory, but with the settings its caller gives: none means
// PostgreSQL's defaults, fsync and synchronous commit on. Stop removes it.
type Server struct{ s *server }

// Start initialises and starts a Server with the given settings (name=value, passed as -c options). It never
// uses NEXUS_TEST_POSTGRES_URL. The error says why when the binaries are missing or the server does not start.
func Start(settings ...string) (*Server, error) {
	s, err := startServerWith("nxpgl", settings)
	if err != nil {
		return nil, err
	}
	if err := s.connect(); err != nil {
		_ = s.shutdown()
		return nil, fmt.Errorf("connect to throwaway server: %w", err)
	}
	return &Server{s: s}, nil
}

// CreateDatabase creates an empty database and returns its URL (postgres://…, the socket form).
func (s *Server) CreateDatabase(name string) (string, error) {
	if err := s.s.exec(`CREATE DATABASE ` + pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	return s.s.databaseURL(name), nil
}

// LogFile is the path of the server's log.
func (s *Server) LogFile() string { return s.s.logFile }

// Stop stops the server at once (pg_ctl stop -m immediate) and removes its directory.
func (s *Server) Stop() error { return s.s.shutdown() }
