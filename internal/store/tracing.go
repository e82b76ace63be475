package store

import (
	"context"
	"database/sql"
	"errors"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"gorm.io/gorm"
)

// instrumentationName names the tracer of this package's spans.
const instrumentationName = "github.com/nexus-cloud/nexus-core/internal/store"

// maxQueryText caps db.query.text: a multi-row insert's statement runs to tens of kilobytes of placeholders.
const maxQueryText = 2048

// tracer is the DB's tracing: nil when tracing is off.
type tracer struct {
	t      trace.Tracer
	system attribute.KeyValue
}

func newTracer(tp trace.TracerProvider, d Dialect) *tracer {
	if tp == nil {
		return nil
	}
	system := semconv.DBSystemNameSQLite
	if d == Postgres {
		system = semconv.DBSystemNamePostgreSQL
	}
	return &tracer{t: tp.Tracer(instrumentationName), system: system}
}

// statementSpan is a statement's span and the context it was started from.
type statementSpan struct {
	span   trace.Span
	parent context.Context
}

// gormSpanKey is where a statement's span waits between the callbacks before and after it.
const gormSpanKey = "nexus:span"

// register adds a client span around every statement GORM runs (create, query, update, delete, row, raw), a child
// of the span in the statement's context. Statements outside any traced operation (migrations, the revocation
// feed's polls) are not traced: a root span per background query would drown the traces. The span carries the statement's text, whose values are all bound
// parameters (placeholders), never the values themselves.
func (tr *tracer) register(g *gorm.DB) error {
	cb := g.Callback()
	return errors.Join(
		cb.Create().Before("gorm:create").Register("nexus:trace_before_create", tr.before("create")),
		cb.Create().After("gorm:create").Register("nexus:trace_after_create", tr.after),
		cb.Query().Before("gorm:query").Register("nexus:trace_before_query", tr.before("query")),
		cb.Query().After("gorm:query").Register("nexus:trace_after_query", tr.after),
		cb.Update().Before("gorm:update").Register("nexus:trace_before_update", tr.before("update")),
		cb.Update().After("gorm:update").Register("nexus:trace_after_update", tr.after),
		cb.Delete().Before("gorm:delete").Register("nexus:trace_before_delete", tr.before("delete")),
		cb.Delete().After("gorm:delete").Register("nexus:trace_after_delete", tr.after),
		cb.Row().Before("gorm:row").Register("nexus:trace_before_row", tr.before("row")),
		cb.Row().After("gorm:row").Register("nexus:trace_after_row", tr.after),
		cb.Raw().Before("gorm:raw").Register("nexus:trace_before_raw", tr.before("raw")),
		cb.Raw().After("gorm:raw").Register("nexus:trace_after_raw", tr.after),
	)
}

func (tr *tracer) before(op string) func(*gorm.DB) {
	return func(db *gorm.DB) {
		ctx := db.Statement.Context
		if ctx == nil || !trace.SpanContextFromContext(ctx).IsValid() {
			return // not part of a traced operation (see register)
		}
		name := op
		if db.Statement.Table != "" {
			name += " " + db.Statement.Table
		}
		parent := ctx
		ctx, span := tr.t.Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(tr.system, semconv.DBOperationName(op)))
		db.Statement.Context = ctx
		db.InstanceSet(gormSpanKey, statementSpan{span: span, parent: parent})
	}
}

func (tr *tracer) after(db *gorm.DB) {
	v, _ := db.InstanceGet(gormSpanKey)
	st, ok := v.(statementSpan)
	if !ok {
		return
	}
	db.InstanceSet(gormSpanKey, nil) // ended: a reused statement's next run ends no span twice
	// A statement reused by a chain (q.First, then q.Count) starts its next span from the parent, not this one.
	db.Statement.Context = st.parent
	span := st.span
	defer span.End()
	if db.Statement.Table != "" {
		span.SetAttributes(semconv.DBCollectionName(db.Statement.Table))
	}
	if q := db.Statement.SQL.String(); q != "" {
		span.SetAttributes(semconv.DBQueryText(queryText(q)))
	}
	if db.Statement.RowsAffected >= 0 {
		span.SetAttributes(attribute.Int64("db.response.affected_rows", db.Statement.RowsAffected))
	}
	if err := db.Error; err != nil && !errors.Is(err, gorm.ErrRecordNotFound) {
		span.RecordError(err)
		span.SetStatus(codes.Error, "")
	}
}

// tx runs fn in a span named "transaction", the parent of fn's statements' spans: with tracing off, or outside
// any traced operation, fn(ctx).
func (tr *tracer) tx(ctx context.Context, fn func(context.Context) error) error {
	if tr == nil || !trace.SpanContextFromContext(ctx).IsValid() {
		return fn(ctx)
	}
	ctx, span := tr.t.Start(ctx, "transaction", trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(tr.system))
	defer span.End()
	err := fn(ctx)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "")
	}
	return err
}

// statement runs a database/sql statement of the events store's hot paths in a client span when tracing is on
// and ctx is part of a traced operation.
func (tr *tracer) statement(ctx context.Context, op, query string, fn func(context.Context) error) error {
	if tr == nil || !trace.SpanContextFromContext(ctx).IsValid() {
		return fn(ctx)
	}
	ctx, span := tr.t.Start(ctx, op, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(tr.system, semconv.DBOperationName(op), semconv.DBQueryText(queryText(query))))
	defer span.End()
	err := fn(ctx)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		span.RecordError(err)
		span.SetStatus(codes.Error, "")
	}
	return err
}

func queryText(q string) string {
	if len(q) <= maxQueryText {
		return q
	}
	return q[:maxQueryText] + "…"
}
