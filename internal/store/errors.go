package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	sqlite "github.com/glebarez/go-sqlite"
	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"

	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

// SQLite result codes (primary codes are the low byte of extended ones).
const (
	sqliteBusy            = 5
	sqliteLocked          = 6
	sqliteConstraintUniq  = 2067
	sqliteConstraintPKey  = 1555
	sqliteCantOpen        = 14
	sqliteIOErr           = 10
	sqliteFull            = 13
	sqliteReadOnlyPrimary = 8
	sqliteInterrupt       = 9
)

// translate turns a driver or GORM error into a *nexus.Error of the right kind, keeping the cause for the log:
// missing rows are not found, unique violations conflicts, and anything that says the database is unreachable,
// overloaded or shutting down is unavailable. Everything else is internal.
func translate(err error) error {
	if err == nil {
		return nil
	}
	var ne *nexus.Error
	if errors.As(err, &ne) {
		return err
	}
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nexus.ErrNotFound
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		switch {
		case pg.Code == "22021" || pg.Code == "22P05":
			// text PostgreSQL cannot store (NUL, or characters outside the encoding): the input's fault
			return &nexus.Error{Kind: nexus.KindInvalid, Code: nexus.CodeValidationFailed, Message: "The request has 1 invalid field.",
				Fields: []nexus.FieldError{nexus.BodyField("", "contains characters that cannot be stored")}, Err: err}
		case pg.Code == "23505":
			return &nexus.Error{Kind: nexus.KindConflict, Code: nexus.CodeConflict, Message: nexus.ErrConflict.Message, Err: err}
		case strings.HasPrefix(pg.Code, "08"), strings.HasPrefix(pg.Code, "53"), strings.HasPrefix(pg.Code, "57"),
			pg.Code == "40001", pg.Code == "40P01":
			// connection exceptions, insufficient resources, operator intervention (shutdown, cancel),
			// serialization failures and deadlocks: all worth a retry
			return nexus.Unavailable(err)
		}
		return nexus.Internal(err)
	}
	var lite *sqlite.Error
	if errors.As(err, &lite) {
		switch code := lite.Code(); {
		case code == sqliteConstraintUniq || code == sqliteConstraintPKey:
			return &nexus.Error{Kind: nexus.KindConflict, Code: nexus.CodeConflict, Message: nexus.ErrConflict.Message, Err: err}
		case code&0xff == sqliteBusy, code&0xff == sqliteLocked, code&0xff == sqliteCantOpen, code&0xff == sqliteIOErr,
			code&0xff == sqliteFull, code&0xff == sqliteReadOnlyPrimary, code&0xff == sqliteInterrupt:
			// SQLITE_INTERRUPT: the statement's context ended (a deadline, or the client went away)
			return nexus.Unavailable(err)
		}
		return nexus.Internal(err)
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	switch {
	case errors.As(err, &connectErr), errors.As(err, &netErr), errors.Is(err, driver.ErrBadConn),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed), // the connection ended
		errors.Is(err, context.DeadlineExceeded), pgconn.SafeToRetry(err), pgconn.Timeout(err):
		return nexus.Unavailable(err)
	case errors.Is(err, context.Canceled):
		return nexus.Unavailable(err)
	}
	return nexus.Internal(err)
}
