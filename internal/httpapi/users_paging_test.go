package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/nexus-cloud/nexus-core/internal/auth"
	"github.com/nexus-cloud/nexus-core/internal/nexus"
	"github.com/nexus-cloud/nexus-core/internal/store"
)

// userPage is a listUsers response as the paging tests read it.
type userPage struct {
	Data []struct {
		ID             string    `json:"id"`
		OrganizationID string    `json:"organization_id"`
		Role           string    `json:"role"`
		Status         string    `json:"status"`
		CreatedAt      time.Time `json:"created_at"`
	} `json:"data"`
	Pagination struct {
		Limit   int  `json:"limit"`
		Offset  int  `json:"offset"`
		Total   int  `json:"total"`
		HasMore bool `json:"has_more"`
	} `json:"pagination"`
}

// TestUsersPagingEveryPageSize pages through an organization of 250 users with every page size from 1 to 100,
// with filters, and while users are being added, and checks the limits of limit and offset.
func TestUsersPagingEveryPageSize(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		hash, err := auth.HashPassword(adminPassword)
		must(t, err)
		// A fresh organization of exactly 250 users (its admin included): every role, a third of them inactive.
		org, err := e.dir.CreateOrganization(ctx, "Paging")
		must(t, err)
		pager := e.user(org.ID, "pager@p.example", nexus.RoleAdmin, hash)
		all := []nexus.User{pager}
		seq := 0
		createIn := func(dir *store.Directory, role nexus.Role, status nexus.UserStatus) (nexus.User, error) {
			seq++
			return dir.CreateUser(ctx, nexus.User{OrganizationID: org.ID, Email: fmt.Sprintf("p%04d@p.example", seq),
				Name: fmt.Sprintf("Pager %04d", seq), Role: role, Status: status}, hash)
		}
		create := func(role nexus.Role, status nexus.UserStatus) nexus.User {
			u, err := createIn(e.dir, role, status)
			must(t, err)
			return u
		}
		// In one transaction, which is much faster on SQLite.
		must(t, e.dir.Seed(ctx, func(tx *store.Directory) error {
			for i := 1; i < 250; i++ {
				status := nexus.UserActive
				if i%3 == 0 {
					status = nexus.UserInactive
				}
				u, err := createIn(tx, contractRoles[i%len(contractRoles)], status)
				if err != nil {
					return err
				}
				all = append(all, u)
			}
			return nil
		}))
		// The contract's order: creation time, then id.
		byCreation := func(a, b nexus.User) int {
			if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
				return c
			}
			return strings.Compare(a.ID, b.ID)
		}
		slices.SortFunc(all, byCreation)
		token, _ := e.loginAs(pager.Email, adminPassword)
		requests := 0

		list := func(t *testing.T, q url.Values) (resp, userPage) {
			t.Helper()
			requests++
			r := e.do("GET", "/v2/users?"+q.Encode(), nil, bearer(token)...)
			if r.status != http.StatusOK {
				t.Fatalf("GET /v2/users?%s: %d %s", q.Encode(), r.status, r.body)
			}
			var p userPage
			must(t, json.Unmarshal(r.body, &p))
			return r, p
		}
		matching := func(users []nexus.User, filter url.Values) []string {
			out := []string{}
			for _, u := range users {
				if s := filter.Get("status"); s != "" && string(u.Status) != s {
					continue
				}
				if r := filter.Get("role"); r != "" && string(u.Role) != r {
					continue
				}
				out = append(out, u.ID)
			}
			return out
		}
		// walk pages through the list with page size n, calling between (if set) after each page, which may add
		// users and returns the ids the list must show at that moment. It checks every page against the
		// current list and returns the ids seen, in order.
		walk := func(t *testing.T, filter url.Values, n int, current []string, between func(page int) []string) []string {
			t.Helper()
			var seen []string
			var prev time.Time
			var prevID string
			for page, offset := 0, 0; ; page++ {
				if page > 300 {
					t.Fatal("paging does not end")
				}
				q := url.Values{"limit": {strconv.Itoa(n)}, "offset": {strconv.Itoa(offset)}}
				for k, v := range filter {
					q[k] = v
				}
				_, p := list(t, q)
				want := current[min(offset, len(current)):min(offset+n, len(current))]
				var got []string
				for _, d := range p.Data {
					if d.OrganizationID != org.ID {
						t.Fatalf("offset %d: a user of organization %s", offset, d.OrganizationID)
					}
					if s := filter.Get("status"); s != "" && d.Status != s {
						t.Fatalf("offset %d: status %s listed for status=%s", offset, d.Status, s)
					}
					if r := filter.Get("role"); r != "" && d.Role != r {
						t.Fatalf("offset %d: role %s listed for role=%s", offset, d.Role, r)
					}
					// The order, read from the responses alone: created_at, then id.
					if c := d.CreatedAt.Compare(prev); c < 0 || (c == 0 && d.ID <= prevID) {
						t.Fatalf("offset %d: %s (%s) listed after %s (%s)", offset, d.ID, d.CreatedAt, prevID, prev)
					}
					prev, prevID = d.CreatedAt, d.ID
					got = append(got, d.ID)
				}
				if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
					t.Fatalf("limit %d offset %d (-want +got):\n%s", n, offset, diff)
				}
				pg := p.Pagination
				if pg.Limit != n || pg.Offset != offset || pg.Total != len(current) || pg.HasMore != (offset+len(got) < len(current)) {
					t.Fatalf("limit %d offset %d: pagination %+v, want total %d", n, offset, pg, len(current))
				}
				seen = append(seen, got...)
				if !pg.HasMore {
					return seen
				}
				offset += len(got)
				if between != nil {
					current = between(page)
				}
			}
		}

		t.Run("every page size", func(t *testing.T) {
			want := matching(all, nil)
			for n := 1; n <= 100; n++ {
				if seen := walk(t, nil, n, want, nil); !slices.Equal(seen, want) {
					t.Fatalf("limit %d: saw %d users, want each of %d once, in order", n, len(seen), len(want))
				}
			}
		})

		t.Run("filters", func(t *testing.T) {
			var filters []url.Values
			for _, s := range []string{"", "active", "inactive"} {
				for _, r := range []string{"", "admin", "manager", "analyst", "member"} {
					f := url.Values{}
					if s != "" {
						f.Set("status", s)
					}
					if r != "" {
						f.Set("role", r)
					}
					if len(f) > 0 {
						filters = append(filters, f)
					}
				}
			}
			for _, f := range filters {
				want := matching(all, f)
				if len(want) == 0 {
					t.Fatalf("%s: no user matches; the set-up should cover every filter", f.Encode())
				}
				sizes := []int{3, 100}
				if len(f) == 2 {
					sizes = []int{5, 100}
				}
				for _, n := range sizes {
					if seen := walk(t, f, n, want, nil); !slices.Equal(seen, want) {
						t.Fatalf("%s limit %d: saw %d users, want each of %d once, in order", f.Encode(), n, len(seen), len(want))
					}
				}
			}
		})

		t.Run("default limit", func(t *testing.T) {
			_, p := list(t, url.Values{})
			if pg := p.Pagination; pg.Limit != 20 || pg.Offset != 0 || pg.Total != 250 || !pg.HasMore || len(p.Data) != 20 {
				t.Fatalf("pagination %+v with %d users", pg, len(p.Data))
			}
		})

		t.Run("offset at or beyond the end", func(t *testing.T) {
			for _, c := range []struct{ limit, offset string }{
				{"", "250"}, {"1", "250"}, {"100", "251"}, {"100", "9999"}, {"1", "10000"}, {"", "10000"},
			} {
				q := url.Values{"offset": {c.offset}}
				if c.limit != "" {
					q.Set("limit", c.limit)
				}
				r, p := list(t, q)
				limit := 20
				if c.limit != "" {
					limit, _ = strconv.Atoi(c.limit)
				}
				offset, _ := strconv.Atoi(c.offset)
				if pg := p.Pagination; len(p.Data) != 0 || pg.HasMore || pg.Total != 250 || pg.Limit != limit || pg.Offset != offset {
					t.Errorf("%s: %s", q.Encode(), r.body)
				}
			}
			// Offsets at the end of a filter's list.
			f := url.Values{"role": {"analyst"}, "status": {"inactive"}}
			n := len(matching(all, f))
			for _, offset := range []int{n, n + 1} {
				q := url.Values{"role": f["role"], "status": f["status"], "offset": {strconv.Itoa(offset)}}
				if r, p := list(t, q); len(p.Data) != 0 || p.Pagination.HasMore || p.Pagination.Total != n {
					t.Errorf("%s: %s", q.Encode(), r.body)
				}
			}
		})

		t.Run("invalid", func(t *testing.T) {
			for _, c := range []struct {
				query string
				names []string // the parameters the problem must name
			}{
				{"limit=0", []string{"limit"}},
				{"limit=101", []string{"limit"}},
				{"limit=-1", []string{"limit"}},
				{"limit=abc", []string{"limit"}},
				{"limit=1.5", []string{"limit"}},
				{"limit=1e2", []string{"limit"}},
				{"limit=99999999999999999999", []string{"limit"}},
				{"offset=-1", []string{"offset"}},
				{"offset=10001", []string{"offset"}},
				{"offset=abc", []string{"offset"}},
				{"offset=0.5", []string{"offset"}},
				{"limit=10&offset=10001", []string{"offset"}},
				{"status=deleted", []string{"status"}},
				{"status=ACTIVE", []string{"status"}},
				{"status=Active", []string{"status"}},
				{"role=owner", []string{"role"}},
				{"role=Admin", []string{"role"}},
				{"role=admin,manager", []string{"role"}},
				{"limit=0&offset=-1", []string{"limit", "offset"}},
				{"limit=abc&offset=10001&status=gone&role=root", []string{"limit", "offset", "role", "status"}},
			} {
				t.Run(c.query, func(t *testing.T) {
					requests++
					r := e.do("GET", "/v2/users?"+c.query, nil, bearer(token)...)
					expectProblem(t, r, http.StatusBadRequest, "validation_failed")
					var p struct {
						Errors []struct {
							Parameter *string `json:"parameter"`
							Pointer   *string `json:"pointer"`
							Header    *string `json:"header"`
							Detail    string  `json:"detail"`
						} `json:"errors"`
					}
					must(t, json.Unmarshal(r.body, &p))
					var names []string
					for _, fe := range p.Errors {
						if fe.Parameter == nil || fe.Pointer != nil || fe.Header != nil || fe.Detail == "" {
							t.Fatalf("field error does not name one parameter: %s", r.body)
						}
						if !slices.Contains(names, *fe.Parameter) {
							names = append(names, *fe.Parameter)
						}
					}
					slices.Sort(names)
					if !slices.Equal(names, c.names) {
						t.Fatalf("names %v, want %v: %s", names, c.names, r.body)
					}
				})
			}
		})

		// Last, as it adds users: pages fetched while users are created meanwhile. Every user that existed
		// throughout is seen exactly once, in order, and the new ones follow at the end.
		t.Run("users added while paging", func(t *testing.T) {
			for _, c := range []struct {
				filter url.Values
				n      int
				add    []nexus.Role // roles of the users added after each page, in turn
			}{
				{nil, 3, []nexus.Role{"member"}},
				{nil, 17, []nexus.Role{"analyst", "admin"}},
				{nil, 100, []nexus.Role{"manager"}},
				{url.Values{"role": {"analyst"}}, 4, []nexus.Role{"analyst", "member"}},
				{url.Values{"role": {"member"}, "status": {"active"}}, 6, []nexus.Role{"manager", "member"}},
			} {
				before := matching(all, c.filter)
				var added []nexus.User
				seen := walk(t, c.filter, c.n, before, func(page int) []string {
					if page < 20 {
						u := create(c.add[page%len(c.add)], nexus.UserActive)
						all = append(all, u)
						added = append(added, u)
					}
					return matching(all, c.filter)
				})
				if len(added) == 0 {
					t.Fatalf("%s limit %d: no user was added while paging", c.filter.Encode(), c.n)
				}
				want := append(slices.Clone(before), matching(added, c.filter)...)
				if diff := cmp.Diff(want, seen); diff != "" {
					t.Fatalf("%s limit %d: users seen (-want +got):\n%s", c.filter.Encode(), c.n, diff)
				}
			}
		})
		t.Logf("%d requests", requests)
	})
}

// TestUsersTotalsFollowChanges creates users and changes roles and statuses through the API, and checks after
// each step that every filter's total (on the first page and past the last) is the number of users the
// unfiltered list shows with that role and status.
func TestUsersTotalsFollowChanges(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		access, _ := e.tokens(webClient)
		auth := bearer(access)
		list := func(t *testing.T, q string) userPage {
			t.Helper()
			r := e.do("GET", "/v2/users?"+q, nil, auth...)
			if r.status != http.StatusOK {
				t.Fatalf("GET /v2/users?%s: %d %s", q, r.status, r.body)
			}
			var p userPage
			must(t, json.Unmarshal(r.body, &p))
			return p
		}
		check := func(t *testing.T, when string) {
			t.Helper()
			everyone := list(t, "limit=100")
			if len(everyone.Data) != everyone.Pagination.Total {
				t.Fatalf("%s: %d users listed, total %d", when, len(everyone.Data), everyone.Pagination.Total)
			}
			for _, status := range []string{"", "active", "inactive"} {
				for _, role := range []string{"", "admin", "manager", "analyst", "member"} {
					want := 0
					for _, d := range everyone.Data {
						if (status == "" || d.Status == status) && (role == "" || d.Role == role) {
							want++
						}
					}
					q := url.Values{}
					if status != "" {
						q.Set("status", status)
					}
					if role != "" {
						q.Set("role", role)
					}
					for _, offset := range []int{0, 10_000} {
						q.Set("offset", strconv.Itoa(offset))
						pg := list(t, q.Encode()).Pagination
						if pg.Total != want || pg.HasMore != (offset == 0 && want > 20) {
							t.Errorf("%s: %s: pagination %+v, want total %d", when, q.Encode(), pg, want)
						}
					}
				}
			}
		}
		check(t, "at the start")
		var ids []string
		for i, c := range []struct{ role, status string }{
			{"member", "active"}, {"member", "inactive"}, {"analyst", "active"}, {"manager", "active"}, {"admin", "active"},
		} {
			r := e.do("POST", "/v2/users", map[string]any{"email": fmt.Sprintf("t%d@example.com", i), "name": "T",
				"role": c.role, "status": c.status, "password": "a long enough password"}, auth...)
			if r.status != http.StatusCreated {
				t.Fatalf("POST /v2/users: %d %s", r.status, r.body)
			}
			ids = append(ids, r.str(t, "id"))
		}
		check(t, "after the creations")
		for i, change := range []map[string]any{
			{"role": "analyst"},
			{"status": "active", "role": "manager"},
			{"status": "inactive"},
			{"name": "Renamed"},
		} {
			if r := e.do("PATCH", "/v2/users/"+ids[i], change, auth...); r.status != http.StatusOK {
				t.Fatalf("PATCH %v: %d %s", change, r.status, r.body)
			}
			check(t, fmt.Sprintf("after PATCH %v", change))
		}
	})
}
