package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"

	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

func TestTranslate(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		want     nexus.Kind
		sentinel error // if set, the result must match it with errors.Is
	}{
		{"record not found", gorm.ErrRecordNotFound, nexus.KindNotFound, nexus.ErrNotFound},
		{"wrapped record not found", fmt.Errorf("take: %w", gorm.ErrRecordNotFound), nexus.KindNotFound, nexus.ErrNotFound},
		{"unique violation", &pgconn.PgError{Code: "23505"}, nexus.KindConflict, nexus.ErrConflict},
		{"wrapped unique violation", fmt.Errorf("insert: %w", &pgconn.PgError{Code: "23505"}), nexus.KindConflict, nexus.ErrConflict},
		{"text PostgreSQL cannot store", &pgconn.PgError{Code: "22021"}, nexus.KindInvalid, nil},
		{"connection failure", &pgconn.PgError{Code: "08006"}, nexus.KindUnavailable, nexus.ErrUnavailable},
		{"admin shutdown", &pgconn.PgError{Code: "57P01"}, nexus.KindUnavailable, nexus.ErrUnavailable},
		{"too many connections", &pgconn.PgError{Code: "53300"}, nexus.KindUnavailable, nexus.ErrUnavailable},
		{"serialization failure", &pgconn.PgError{Code: "40001"}, nexus.KindUnavailable, nexus.ErrUnavailable},
		{"deadlock", &pgconn.PgError{Code: "40P01"}, nexus.KindUnavailable, nexus.ErrUnavailable},
		{"foreign key violation", &pgconn.PgError{Code: "23503"}, nexus.KindInternal, nil},
		{"invalid text representation", &pgconn.PgError{Code: "22P02"}, nexus.KindInternal, nil},
		{"PgError without code", &pgconn.PgError{}, nexus.KindInternal, nil},
		{"deadline exceeded", context.DeadlineExceeded, nexus.KindUnavailable, nexus.ErrUnavailable},
		{"wrapped deadline exceeded", fmt.Errorf("query: %w", context.DeadlineExceeded), nexus.KindUnavailable, nexus.ErrUnavailable},
		{"canceled", context.Canceled, nexus.KindUnavailable, nexus.ErrUnavailable},
		{"bad connection", driver.ErrBadConn, nexus.KindUnavailable, nexus.ErrUnavailable},
		{"connection ended mid-message (server crashed)", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), nexus.KindUnavailable, nexus.ErrUnavailable},
		{"connection ended", io.EOF, nexus.KindUnavailable, nexus.ErrUnavailable},
		{"connection closed", fmt.Errorf("write: %w", net.ErrClosed), nexus.KindUnavailable, nexus.ErrUnavailable},
		{"plain error", errors.New("boom"), nexus.KindInternal, nil},
		{"nexus error kept", nexus.ErrInvalidGrant, nexus.KindUnauthenticated, nexus.ErrInvalidGrant},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := translate(tt.err)
			if got == nil {
				t.Fatal("translate returned nil")
			}
			if k := nexus.KindOf(got); k != tt.want {
				t.Errorf("KindOf(translate(%v)) = %v, want %v", tt.err, k, tt.want)
			}
			if tt.sentinel != nil && !errors.Is(got, tt.sentinel) {
				t.Errorf("translate(%v) = %v, want errors.Is %v", tt.err, got, tt.sentinel)
			}
			if tt.want != nexus.KindNotFound && !errors.Is(got, tt.err) {
				t.Errorf("translate(%v) = %v, lost the cause", tt.err, got)
			}
		})
	}
	if err := translate(nil); err != nil {
		t.Errorf("translate(nil) = %v, want nil", err)
	}
}
