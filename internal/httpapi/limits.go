package httpapi

import "github.com/nexus-cloud/nexus-core/internal/httpapi/contract"

// Limits are the quotas of the rate-limit policies (contract.Limits), as Options takes them.
type Limits = contract.Limits

// RateLimiter is what the HTTP layer needs from the rate limiter (contract.RateLimiter).
type RateLimiter = contract.RateLimiter
