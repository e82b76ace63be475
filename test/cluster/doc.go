// Package cluster holds the cluster test (make cluster-test): three `nexus serve` processes behind a real HAProxy,
// on one throwaway PostgreSQL and one redis-server, under a bounded mixed load while nodes are restarted and
// killed, the database restarted and Redis killed; then revocation, key rotation and a shared rate-limit budget
// across the nodes. It drives the server binary over HTTP only (and reads the database directly to count
// events), so it tests what operators deploy. It runs only with NEXUS_CLUSTER_TEST=1.
package cluster
