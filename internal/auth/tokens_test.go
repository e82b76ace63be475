package auth

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

// BenchmarkVerifyAccessToken measures what every authenticated request pays before its session lookup: the
// parsing, the signature verification and the claim checks of one access token.
func BenchmarkVerifyAccessToken(b *testing.B) {
	ctx := context.Background()
	clock := &fakeClock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	svc, err := NewService(Options{Store: newFakeStore(), Secret: make([]byte, 32), Issuer: testIssuer,
		AccessTTL: testAccessTTL, Now: clock.Now})
	if err != nil {
		b.Fatal(err)
	}
	if err := svc.EnsureSigningKey(ctx); err != nil {
		b.Fatal(err)
	}
	p := nexus.Principal{UserID: uuid.NewString(), OrganizationID: uuid.NewString(), Role: nexus.RoleAnalyst,
		SessionID: uuid.NewString(), ClientID: testClient}
	raw, err := svc.signAccessToken(ctx, p, clock.Now())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := svc.verifyAccessToken(ctx, raw); err != nil {
			b.Fatal(err)
		}
	}
}
