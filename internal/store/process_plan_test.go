package store_test

import (
	"context"
	"strings"
	"testing"

	"github.com/nexus-cloud/nexus-core/internal/store"
	"github.com/nexus-cloud/nexus-core/internal/store/storetest"
)

// TestProcessBatchPlan: whatever the statistics say about the backlog (here: analyzed while empty, then filled
// with 30,000 rows that no analyze has seen), the processor's batch statement takes its ids once and deletes them
// through the primary key, never scanning the backlog per batch or re-running the batch's subquery per row.
func TestProcessBatchPlan(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t, store.Postgres)
	for _, q := range []string{
		"ALTER TABLE event_backlog SET (autovacuum_enabled = false)",
		"ANALYZE event_backlog",
		`INSERT INTO event_backlog (id, organization_id, user_id, event_name, event_category, occurred_at, received_at)
		 SELECT gen_random_uuid(), gen_random_uuid(), gen_random_uuid(), 'e', 'c', now(), now() FROM generate_series(1, 30000)`,
	} {
		if err := db.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	plan, err := db.ExplainProcessBatch(ctx, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(plan, "InitPlan") || !strings.Contains(plan, "Index Cond: (id = ANY") ||
		strings.Contains(plan, "Seq Scan on event_backlog") || strings.Contains(plan, "SubPlan") {
		t.Errorf("the batch statement's plan:\n%s", plan)
	}
}
