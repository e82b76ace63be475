package httpapi

import (
	"bytes"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/uuid"
	openapi_types "github.com/oapi-codegen/runtime/types"

	"github.com/nexus-cloud/nexus-core/gen"
)

// compareUserList writes r with the generated VisitListUsersResponse and with userListResponse's and fails
// unless status, headers, body and error are the same. It reports whether the fast path encoded it.
func compareUserList(t *testing.T, r gen.ListUsers200JSONResponse) bool {
	t.Helper()
	want, got := httptest.NewRecorder(), httptest.NewRecorder()
	wantErr := r.VisitListUsersResponse(want)
	gotErr := userListResponse(r).VisitListUsersResponse(got)
	if (wantErr == nil) != (gotErr == nil) {
		t.Fatalf("errors differ: generated %v, fast %v", wantErr, gotErr)
	}
	if want.Code != got.Code || !bytes.Equal(want.Body.Bytes(), got.Body.Bytes()) {
		t.Fatalf("answers differ:\ngenerated %d %q\nfast      %d %q", want.Code, want.Body.Bytes(), got.Code, got.Body.Bytes())
	}
	if len(want.Header()) != len(got.Header()) {
		t.Fatalf("headers differ: generated %v, fast %v", want.Header(), got.Header())
	}
	for k, v := range want.Header() {
		if g := got.Header()[k]; len(g) != len(v) || len(v) != 1 || g[0] != v[0] {
			t.Fatalf("header %s differs: generated %q, fast %q", k, v, g)
		}
	}
	_, fast := appendUserList(nil, &r.Body)
	return fast
}

// listOf returns a one-page list of the given user, as ListUsers makes it.
func listOf(users ...gen.User) gen.ListUsers200JSONResponse {
	return gen.ListUsers200JSONResponse{
		Body:    gen.UserList{Data: users, Pagination: gen.Pagination{Limit: 50, Offset: 10000, Total: 100000, HasMore: true}},
		Headers: gen.ListUsers200ResponseHeaders{CacheControl: &privateNoStore},
	}
}

func sampleUser() gen.User {
	return gen.User{
		Id: uuid.MustParse("01934a91-8c53-75b1-8ae4-af5cb5e9d2c1"), OrganizationId: uuid.MustParse("01934a91-8c53-75b1-8ae4-1d0c7e3f9a22"),
		Email: "ada.lovelace+x@example.com", Name: "Ada Lovelace", Role: gen.Role("analyst"), Status: gen.UserStatus("active"),
		CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC), UpdatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
	}
}

// TestUserListEncoding proves that the listing's encoder writes what the generated code writes, on the fast
// path and on every way off it.
func TestUserListEncoding(t *testing.T) {
	u := sampleUser()
	if !compareUserList(t, listOf(u, u)) {
		t.Fatal("a plain user did not take the fast path")
	}
	compareUserList(t, listOf())
	compareUserList(t, gen.ListUsers200JSONResponse{Body: gen.UserList{}}) // data null, no Cache-Control
	rl, id := "limit=1", "req-1"
	compareUserList(t, gen.ListUsers200JSONResponse{Body: gen.UserList{Data: []gen.User{u}},
		Headers: gen.ListUsers200ResponseHeaders{RateLimit: &rl, RateLimitPolicy: &rl, XRequestId: &id}})

	// Each character the fast path must leave to encoding/json, alone in a name, a role and a status.
	for _, c := range []string{`"`, `\\`, "<", ">", "&", "\x7f", "\x1f", "\x00", "é", "\u2028", "\xff"} {
		for _, field := range []string{"name", "role", "status"} {
			v := sampleUser()
			switch s := "a" + c + "b"; field {
			case "name":
				v.Name = s
			case "role":
				v.Role = gen.Role(s)
			default:
				v.Status = gen.UserStatus(s)
			}
			if compareUserList(t, listOf(v)) {
				t.Errorf("%s %q took the fast path", field, c)
			}
		}
	}

	perms := []gen.Permission{"users:list"}
	for name, mod := range map[string]func(*gen.User){
		"name with <&>":           func(u *gen.User) { u.Name = "A <b> & c" },
		"name with a quote":       func(u *gen.User) { u.Name = `Ada "the" Countess` },
		"name with unicode":       func(u *gen.User) { u.Name = "Zoë \u2028 \xff" },
		"name with a control":     func(u *gen.User) { u.Name = "a\tb\x01" },
		"quoted email":            func(u *gen.User) { u.Email = `"ada lovelace"@example.com` },
		"display-name email":      func(u *gen.User) { u.Email = "Ada <ada@example.com>" },
		"invalid email":           func(u *gen.User) { u.Email = "not an email" },
		"email with a trailing .": func(u *gen.User) { u.Email = "ada@example.com." },
		"local time":              func(u *gen.User) { u.CreatedAt = u.CreatedAt.In(time.FixedZone("X", 5*3600+1800)) },
		"year 10000":              func(u *gen.User) { u.UpdatedAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) },
		"zero time":               func(u *gen.User) { u.CreatedAt = time.Time{} },
		"permissions":             func(u *gen.User) { u.Permissions = &perms },
		"activity":                func(u *gen.User) { u.Activity = &gen.UserActivity{} },
	} {
		t.Run(name, func(t *testing.T) {
			v := sampleUser()
			mod(&v)
			compareUserList(t, listOf(sampleUser(), v))
		})
	}
}

// FuzzUserListEncoding compares the listing's encoder with the generated code's on arbitrary users.
func FuzzUserListEncoding(f *testing.F) {
	f.Add("ada@example.com", "Ada Lovelace", "analyst", "active", int64(1767323045123456789), int64(0), 0, 50, 0, false)
	f.Add("a.b+c@d-e.f_g", "x", "member", "inactive", int64(-62135596800000000000/1000), int64(1<<62), 3600, 0, -1, true)
	f.Add("a..b@c", "<>&\"\\", "", "", int64(0), int64(0), -1, 1, 1, true)
	f.Fuzz(func(t *testing.T, email, name, role, status string, created, updated int64, zone, limit, offset int, more bool) {
		u := sampleUser()
		u.Email, u.Name, u.Role, u.Status = openapi_types.Email(email), name, gen.Role(role), gen.UserStatus(status)
		loc := time.UTC
		if zone != 0 {
			loc = time.FixedZone("Z", zone%(24*3600))
		}
		u.CreatedAt, u.UpdatedAt = time.Unix(0, created).In(loc), time.Unix(updated, 0).UTC()
		r := listOf(sampleUser(), u)
		r.Body.Pagination = gen.Pagination{Limit: limit, Offset: offset, Total: limit + offset, HasMore: more}
		compareUserList(t, r)
	})
}
