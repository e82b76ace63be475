// Package contract holds every request to an operation of openapi.yaml to the contract before its handler runs.
// It loads the embedded document once, resolves each request's operation once, and runs the steps of pipeline in
// order, each doing one thing: limit, negotiate, authenticate, limit the user, authorize, read the body, validate,
// operation rules. What an operation needs beyond its schema is declared in openapi.yaml by x-nexus-* extensions
// (operation.go), never by operationId here. Every error a step returns is a *nexus.Error, which the HTTP layer's
// one error mapper turns into problem+json.
package contract

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sync/atomic"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/labstack/echo/v4"

	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

// Authenticator verifies bearer tokens.
type Authenticator interface {
	Authenticate(ctx context.Context, bearer string) (nexus.Principal, error)
	// Remembered returns the principal of a token verified before, unchecked: for the rate limits.
	Remembered(bearer string) (nexus.Principal, bool)
}

// Rule is what a schema's x-nexus-rules extension names: the rules of such a JSON object (a body, or an item of a
// batch) that the schema cannot state, and optionally its one-pass decoding.
type Rule struct {
	// Check names what is wrong with an object beyond its schema. It runs on an object that failed its schema,
	// so that one answer names every failing field; a valid object is checked by the service that takes it.
	Check func(raw []byte) []nexus.FieldError
	// Bind, if set, makes the handler's value of a flat object that the one pass decoded (see flat.go) from its
	// members (every member of the schema, set or not, in no particular order; the slice is reused for the next
	// object, so Bind keeps none of it but the strings and bytes it holds): a pointer to the type the handler
	// binds, as Binder hands it over. False when a member does not convert, and the usual validation decides.
	Bind func(members []Member) (any, bool)
	// Batch makes the handler's value of a batch body (a pointer, as Bind's) from its items' values, nil for the
	// items refused. Needed with Bind on a batch's item schema.
	Batch func(items []any) any
}

// Config is what the contract needs besides the document.
type Config struct {
	Auth    Authenticator
	Limiter RateLimiter // nil: no rate limits
	Limits  Limits
	Rules   map[string]Rule // by the name x-nexus-rules gives
	Base    string          // the path prefix of every operation, as routed ("/v2")
}

// Contract is the compiled contract: the operations of the document and what their steps need.
type Contract struct {
	spec    *openapi3.T
	ops     map[string]*Operation // by method and Echo route path
	auth    Authenticator
	limiter RateLimiter
	limits  Limits
	refused map[string]*atomic.Int64 // 429 answers by policy
	opts    *openapi3filter.Options
}

// New compiles spec (see LoadSpec) for the pipeline. It fails when an x-nexus-* extension of the document is
// malformed or names a rule that cfg does not have.
func New(spec *openapi3.T, cfg Config) (*Contract, error) {
	k := &Contract{spec: spec, auth: cfg.Auth, limiter: cfg.Limiter, limits: cfg.Limits, refused: map[string]*atomic.Int64{},
		opts: validationOptions()}
	for _, name := range Policies {
		k.refused[name] = new(atomic.Int64)
	}
	var err error
	if k.ops, err = Index(spec, cfg.Base); err != nil {
		return nil, err
	}
	for _, op := range k.ops {
		if op.ruleName == "" {
			continue
		}
		r, ok := cfg.Rules[op.ruleName]
		if !ok {
			return nil, fmt.Errorf("%s %s: x-nexus-rules %q names no rule", op.Route.Method, op.Route.Path, op.ruleName)
		}
		op.rule = &r
		if r.Bind != nil && (op.items == "" || r.Batch != nil) {
			op.flat = flatDecoder(spec, op)
		}
	}
	return k, nil
}

// step is one thing the pipeline checks of a request: nil lets the request go on to the next step, an error is
// the answer.
type step func(k *Contract, x *exchange) error

// pipeline is what every request to an operation goes through before its handler, in this order: a flood costs
// as little as possible (the IP's quota first), nothing about the request is revealed before the caller is
// known and allowed (authentication and permission before the body is read), and one answer names every
// failing field of what remains.
var pipeline = []struct {
	name string
	run  step
}{
	{"limit", (*Contract).limitClient},            // the client IP's quotas, and a remembered token's user's: 429
	{"negotiate", (*Contract).negotiate},          // Accept rules out every media type of the answer: 406
	{"authenticate", (*Contract).authenticate},    // the bearer token, for a secured operation: 401
	{"limit user", (*Contract).limitUser},         // the user's quota, unless taken in the first step: 429
	{"authorize", (*Contract).authorize},          // x-nexus-permission and x-nexus-own-parameter: 403
	{"read body", (*Contract).readBody},           // size, coding, media type, well-formed JSON: 413, 415, 400
	{"validate", (*Contract).validate},            // parameters and body against the schema, items one by one: 400
	{"operation rules", (*Contract).flagRequests}, // query flags with a permission of their own: 403
}

// exchange is one request on its way through the pipeline, and what the steps learned of it. It is in the
// request's context from the first step on (see OperationFrom).
type exchange struct {
	c       echo.Context
	op      *Operation
	params  map[string]string // the path parameters, percent-decoded
	subject string            // the user the request is about (x-nexus-own-parameter), or ""
	p       nexus.Principal
	body    []byte

	limits limitState                 // the rate-limit policies applied, for the RateLimit headers
	items  map[int][]nexus.FieldError // failing fields of the batch items the validator refused, by index
}

type exchangeKey struct{}

func exchangeFrom(ctx context.Context) *exchange {
	x, _ := ctx.Value(exchangeKey{}).(*exchange)
	return x
}

// OperationFrom returns the operation of the contract that the request of ctx was resolved to, or nil.
func OperationFrom(ctx context.Context) *Operation {
	if x := exchangeFrom(ctx); x != nil {
		return x.op
	}
	return nil
}

// RequestHeader returns the header of the request of ctx (for what a handler reads beyond the generated
// parameters: client authentication at the OAuth endpoints), or nil.
func RequestHeader(ctx context.Context) http.Header {
	if x := exchangeFrom(ctx); x != nil {
		return x.c.Request().Header
	}
	return nil
}

// ItemErrors returns the failing fields of the batch items the validator refused, by index; the handler gets
// such items as null (or its zero value), so that one bad item never refuses the others.
func ItemErrors(ctx context.Context) map[int][]nexus.FieldError {
	if x := exchangeFrom(ctx); x != nil {
		return x.items
	}
	return nil
}

// Middleware resolves the request's operation, once, and runs the Pipeline; requests to no operation of the
// contract (health, docs, unknown paths) pass through untouched.
func (k *Contract) Middleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		op, ok := k.ops[req.Method+" "+c.Path()]
		if !ok {
			return next(c)
		}
		x := &exchange{c: c, op: op, limits: limitState{header: c.Response().Header()}}
		if names := c.ParamNames(); len(names) > 0 {
			x.params = make(map[string]string, len(names))
			for i, name := range names {
				v := c.ParamValues()[i]
				if u, err := url.PathUnescape(v); err == nil {
					v = u
				}
				x.params[name] = v
			}
			x.subject = x.params[op.OwnParam]
		}
		c.SetRequest(req.WithContext(context.WithValue(req.Context(), exchangeKey{}, x)))
		for _, s := range pipeline {
			if err := s.run(k, x); err != nil {
				return err
			}
		}
		return next(c)
	}
}

// Operations returns the compiled operations by method and Echo route path ("GET /v2/users/:userId").
func (k *Contract) Operations() map[string]*Operation { return k.ops }

// Spec returns the document the contract was compiled from.
func (k *Contract) Spec() *openapi3.T { return k.spec }
