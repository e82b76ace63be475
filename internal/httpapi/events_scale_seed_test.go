package httpapi

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/nexus-cloud/nexus-core/internal/analytics"
	"github.com/nexus-cloud/nexus-core/internal/auth"
	"github.com/nexus-cloud/nexus-core/internal/nexus"
	"github.com/nexus-cloud/nexus-core/internal/store"
	"github.com/nexus-cloud/nexus-core/internal/testdb"
)

// The seeded world of the events-at-scale benchmark (events_scale_bench_test.go): 20 organizations, one large
// (half the users and half the events), 10,000 users, 30 event names in 5 categories, 3 sources (and none),
// received over the 60 days before scaleNow (the harness clock), in the order a server receives them.
const (
	// scaleSeedVersion changes whenever the seeded data changes: a cached database of another version is seeded
	// again.
	scaleSeedVersion = 1
	scaleOrgs        = 20
	scaleUsers       = 10_000
	scaleLargeUsers  = scaleUsers / 2
	scaleNames       = 30
	scaleDays        = 60
	scaleChunk       = 10_000 // events per InsertEvents call
	scaleSeedConns   = 2      // concurrent InsertEvents calls
	scaleAdminEmail  = "admin@org00.example"
)

var scaleSources = []string{"web", "web", "web", "web", "ios", "ios", "ios", "android", "android", ""}

// scaleNow is the benchmark's clock: the newest seeded event is received just before it.
var scaleNow = time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)

// scaleWorld is what the seed made that the measurements need.
type scaleWorld struct {
	Org      string   `json:"org"`      // the large organization
	Users    []string `json:"users"`    // its users, in Zipf rank order (the first sends the most events)
	Events   int      `json:"events"`   // events seeded, all organizations
	Schema   int      `json:"schema"`   // store.SchemaVersion() when seeded
	Version  int      `json:"version"`  // scaleSeedVersion when seeded
	SeedSecs float64  `json:"seedSecs"` // how long the seed took (users, events, processing, VACUUM ANALYZE)
}

// markerPath is where the seed of database name records its world.
func markerPath(dir, name string) string { return filepath.Join(dir, "seed-"+name+".json") }

// cachedWorld returns the world recorded for database name when it was seeded by this seed version on this
// schema version with n events.
func cachedWorld(dir, name string, n int) (scaleWorld, bool) {
	var w scaleWorld
	raw, err := os.ReadFile(markerPath(dir, name))
	if err != nil || json.Unmarshal(raw, &w) != nil {
		return w, false
	}
	return w, w.Schema == store.SchemaVersion() && w.Version == scaleSeedVersion && w.Events == n && w.Org != ""
}

// seedScale (re)creates database name on pg, seeds n events into it (seedWorld), runs VACUUM (ANALYZE), and
// records the world in dir.
func seedScale(t testing.TB, pg *testdb.Persistent, dir, name string, n int) scaleWorld {
	ctx := context.Background()
	began := time.Now()
	_ = os.Remove(markerPath(dir, name))
	must(t, pg.Exec(`DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`))
	must(t, pg.Exec(`CREATE DATABASE `+name))
	db, err := store.Open(ctx, store.Options{URL: pg.URL(name)})
	must(t, err)
	defer db.Close()
	w := seedWorld(t, db, name, n)
	// What autovacuum would have done by now on a server that received these events over 60 days.
	_, err = db.Pool().ExecContext(ctx, "VACUUM (ANALYZE)")
	must(t, err)
	_, err = db.Pool().ExecContext(ctx, "CHECKPOINT")
	must(t, err)
	w.SeedSecs = time.Since(began).Seconds()
	raw, err := json.Marshal(w)
	must(t, err)
	must(t, os.WriteFile(markerPath(dir, name), raw, 0o600))
	t.Logf("seed %s: done in %s (VACUUM ANALYZE included)", name, time.Since(began).Round(time.Second))
	return w
}

// seedWorld migrates db and seeds the organizations, users and n events into it through the store's own ingest
// path (store.Events.InsertEvents, scaleChunk events a call, scaleSeedConns calls at a time) while the analytics
// processor builds the rollups. It works on either database.
func seedWorld(t testing.TB, db *store.DB, name string, n int) scaleWorld {
	ctx := context.Background()
	began := time.Now()
	_, err := db.Migrate(ctx)
	must(t, err)
	// Organizations and users through the directory, one transaction per organization.
	hash, err := auth.HashPassword(adminPassword)
	must(t, err)
	dir0 := store.NewDirectory(db)
	_, err = dir0.CreateClient(ctx, store.NewClient{ClientID: webClient, Name: "Web"})
	must(t, err)
	orgs := make([]string, scaleOrgs)
	members := make([][]string, scaleOrgs)
	for o := range scaleOrgs {
		count := (scaleUsers - scaleLargeUsers) / (scaleOrgs - 1)
		if o == 0 {
			count = scaleLargeUsers
		}
		must(t, dir0.Seed(ctx, func(tx *store.Directory) error {
			org, err := tx.CreateOrganization(ctx, fmt.Sprintf("Org %02d", o))
			if err != nil {
				return err
			}
			orgs[o] = org.ID
			for u := range count {
				role, email := nexus.RoleMember, fmt.Sprintf("user%05d@org%02d.example", u, o)
				if u == 0 {
					role, email = nexus.RoleAdmin, fmt.Sprintf("admin@org%02d.example", o)
				}
				user, err := tx.CreateUser(ctx, nexus.User{OrganizationID: org.ID, Email: email, Name: "User " + strconv.Itoa(u),
					Role: role, Status: nexus.UserActive}, hash)
				if err != nil {
					return err
				}
				members[o] = append(members[o], user.ID)
			}
			return nil
		}))
	}
	t.Logf("seed %s: %d organizations, %d users in %s", name, scaleOrgs, scaleUsers, time.Since(began).Round(time.Millisecond))

	// Events, while the processor drains the backlog into the rollups.
	events := store.NewEvents(db)
	proc := analytics.NewProcessor(events, nil, analytics.ProcessorOptions{Batch: scaleChunk})
	gen := newScaleGen(n, orgs, members)
	chunks := (n + scaleChunk - 1) / scaleChunk
	var next, inserted atomic.Int64
	var wg sync.WaitGroup
	var insertErr error
	var errOnce sync.Once
	insertCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range scaleSeedConns {
		wg.Go(func() {
			for {
				c := int(next.Add(1) - 1)
				if c >= chunks || insertCtx.Err() != nil {
					return
				}
				batch := gen.chunk(c)
				if _, err := events.InsertEvents(insertCtx, batch); err != nil {
					errOnce.Do(func() { insertErr = err; cancel() })
					return
				}
				if done := inserted.Add(int64(len(batch))); done%1_000_000 < int64(len(batch)) {
					backlog, _, _ := events.Backlog(ctx)
					t.Logf("seed %s: %d events inserted in %s, backlog %d", name, done, time.Since(began).Round(time.Second), backlog)
				}
			}
		})
	}
	insertsDone := make(chan struct{})
	go func() { wg.Wait(); close(insertsDone) }()
	for finished := false; ; {
		select {
		case <-insertsDone:
			finished = true
		default:
		}
		processed, err := proc.Drain(ctx)
		must(t, err)
		if finished {
			break
		}
		if processed == 0 {
			time.Sleep(50 * time.Millisecond)
		}
	}
	must(t, insertErr)
	if backlog, _, err := events.Backlog(ctx); err != nil || backlog != 0 {
		t.Fatalf("seed %s: backlog %d after the processor drained it (%v)", name, backlog, err)
	}
	t.Logf("seed %s: %d events inserted and processed in %s", name, n, time.Since(began).Round(time.Second))
	return scaleWorld{Org: orgs[0], Users: members[0], Events: n, Schema: store.SchemaVersion(), Version: scaleSeedVersion}
}

// scaleGen makes the seeded events, deterministically: chunk c is the same on every run and on any goroutine.
type scaleGen struct {
	n       int
	orgs    []string
	members [][]string
	span    time.Duration
}

func newScaleGen(n int, orgs []string, members [][]string) *scaleGen {
	return &scaleGen{n: n, orgs: orgs, members: members, span: scaleDays * 24 * time.Hour}
}

// scaleName returns the event name of rank r (0 the most frequent) and its category: names are grouped 6 to a
// category.
func scaleName(r int) (name, category string) {
	return fmt.Sprintf("event_%02d", r), fmt.Sprintf("category_%d", r/(scaleNames/5))
}

// chunk returns the events with indexes [c*scaleChunk, (c+1)*scaleChunk) of n, received in that order.
func (g *scaleGen) chunk(c int) []analytics.Pending {
	rng := rand.New(rand.NewPCG(uint64(c), scaleSeedVersion))
	names := rand.NewZipf(rng, 1.2, 4, scaleNames-1)
	users := make([]*rand.Zipf, len(g.orgs))
	for o := range g.orgs {
		users[o] = rand.NewZipf(rng, 1.1, 8, uint64(len(g.members[o])-1))
	}
	lo, hi := c*scaleChunk, min((c+1)*scaleChunk, g.n)
	out := make([]analytics.Pending, 0, hi-lo)
	start := scaleNow.Add(-g.span)
	for i := lo; i < hi; i++ {
		received := start.Add(time.Duration(float64(g.span) * float64(i) / float64(g.n))).Add(time.Duration(rng.Int64N(int64(time.Second)))).
			Truncate(time.Microsecond)
		if received.After(scaleNow.Add(-time.Second)) {
			received = scaleNow.Add(-time.Second)
		}
		var late time.Duration
		switch p := rng.IntN(100); {
		case p < 90: // sent at once
			late = time.Duration(rng.Int64N(int64(5 * time.Second)))
		case p < 99: // queued in a browser or app for a while
			late = time.Duration(rng.Int64N(int64(time.Hour)))
		default: // a mobile client offline for days
			late = time.Duration(rng.Int64N(int64(72 * time.Hour)))
		}
		occurred := received.Add(-late).Truncate(time.Microsecond)
		o := 0
		if rng.IntN(2) == 1 {
			o = 1 + rng.IntN(len(g.orgs)-1)
		}
		user := g.members[o][users[o].Uint64()]
		name, category := scaleName(int(names.Uint64()))
		source := scaleSources[rng.IntN(len(scaleSources))]
		props := fmt.Sprintf(`{"path":"/p/%d","plan":"team","ref":"campaign-%d","seats":%d}`, rng.IntN(200), rng.IntN(17), rng.IntN(50))
		ev := analytics.Event{ID: scaleID(received, rng), EventID: randomUUID(rng), OrganizationID: g.orgs[o], UserID: user,
			Name: name, Category: category, Source: source, Properties: []byte(props), Timestamp: occurred, ReceivedAt: received}
		sum := sha256.Sum256([]byte(name + "\x00" + category + "\x00" + occurred.Format(time.RFC3339Nano) + "\x00" + user + "\x00" + source + "\x00" + props))
		out = append(out, analytics.Pending{Event: ev, Fingerprint: hex.EncodeToString(sum[:])})
	}
	return out
}

// scaleID returns a UUIDv7 of time t, as the server would have made when it received the event at t.
func scaleID(t time.Time, rng *rand.Rand) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[8:], rng.Uint64())
	binary.BigEndian.PutUint64(b[:8], uint64(t.UnixMilli())<<16|rng.Uint64()&0x0fff)
	b[6] = 0x70 | b[6]&0x0f
	b[8] = 0x80 | b[8]&0x3f
	return uuid.UUID(b).String()
}

// randomUUID returns a version 4 UUID from rng: a client's event id.
func randomUUID(rng *rand.Rand) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], rng.Uint64())
	binary.BigEndian.PutUint64(b[8:], rng.Uint64())
	b[6] = 0x40 | b[6]&0x0f
	b[8] = 0x80 | b[8]&0x3f
	return uuid.UUID(b).String()
}
