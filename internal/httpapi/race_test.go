//go:build race

package httpapi

import "time"

// testCommitTimeout is the event writer's commit timeout in tests. The race detector makes the pure-Go SQLite
// many times slower (a 1,000-event batch takes several seconds to commit), so under -race the tests give each
// transaction far more than the production default of 5 s. Bounds that tests assert are unchanged.
const testCommitTimeout = 60 * time.Second
