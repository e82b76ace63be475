package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"go.opentelemetry.io/otel/trace"

	"github.com/nexus-cloud/nexus-core/internal/app"
	"github.com/nexus-cloud/nexus-core/internal/auth"
	"github.com/nexus-cloud/nexus-core/internal/config"
	"github.com/nexus-cloud/nexus-core/internal/store"
	"github.com/nexus-cloud/nexus-core/internal/users"
)

// env is what every command sets up: configuration, logger, migrated database.
type env struct {
	cfg config.Config
	log *slog.Logger
	db  *store.DB
}

func setup(ctx context.Context, cfg config.Config, stderr io.Writer) (*env, error) {
	return setupTraced(ctx, cfg, stderr, nil)
}

// setupTraced is setup with the database's statements and transactions traced by tp (nil: not traced).
func setupTraced(ctx context.Context, cfg config.Config, stderr io.Writer, tp trace.TracerProvider) (*env, error) {
	var h slog.Handler
	opts := &slog.HandlerOptions{Level: cfg.LogLevel, ReplaceAttr: config.ReplaceAttr}
	if cfg.LogFormat == "text" {
		h = slog.NewTextHandler(stderr, opts)
	} else {
		h = slog.NewJSONHandler(stderr, opts)
	}
	log := slog.New(h)
	db, err := store.Open(ctx, store.Options{URL: cfg.DatabaseURL, DataDir: cfg.DataDir, MaxConns: cfg.DBMaxConns, TracerProvider: tp})
	if err != nil {
		return nil, err
	}
	applied, err := db.Migrate(ctx)
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	if len(applied) > 0 {
		log.Info("applied migrations", slog.Any("versions", applied), slog.String("database", string(db.Dialect())))
	}
	return &env{cfg: cfg, log: log, db: db}, nil
}

// secretFile is where the development secret lives when NEXUS_SECRET_KEY is not set.
const secretFile = "secret.key"

// secretKey returns NEXUS_SECRET_KEY, or else the key in the data directory, which create makes on first use.
// NEXUS_SECRET_KEY_PREVIOUS must differ from it.
func secretKey(cfg config.Config, create bool) ([]byte, error) {
	key, err := currentSecretKey(cfg, create)
	if err == nil && cfg.SecretKeyPrevious != nil && bytes.Equal(key, cfg.SecretKeyPrevious) {
		return nil, errors.New("NEXUS_SECRET_KEY_PREVIOUS: must differ from the secret key (it is the key before the rotation)")
	}
	return key, err
}

func currentSecretKey(cfg config.Config, create bool) ([]byte, error) {
	if cfg.SecretKey != nil {
		return cfg.SecretKey, nil
	}
	path := filepath.Join(cfg.DataDir, secretFile)
	b, err := os.ReadFile(path) // #nosec G304 -- a fixed name in the data directory the operator configured
	switch {
	case err == nil:
		key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
		if err != nil || len(key) != 32 {
			return nil, fmt.Errorf("%s: not a base64 32-byte key", path)
		}
		return key, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, err
	case !create:
		return nil, errors.New("NEXUS_SECRET_KEY: required (or run `nexus serve --dev` once to create a development key in NEXUS_DATA_DIR)")
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("write development secret: %w", err)
	}
	return key, nil
}

// authService is the auth domain service of the admin commands, under the configured secret key (never a
// development one: a command does not create it).
func (e *env) authService() (*auth.Service, error) {
	secret, err := secretKey(e.cfg, false)
	if err != nil {
		return nil, err
	}
	return auth.NewService(app.AuthOptions(e.cfg, e.db, secret, e.log))
}

// usersService is the domain service the admin commands create organizations and users through.
func (e *env) usersService() (*users.Service, error) {
	return app.UsersService(e.cfg.RefreshIdleTTL, e.db, nil)
}
