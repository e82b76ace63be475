package ratelimit

// WindowSeconds is the quota's window in whole seconds, rounded up, for the w parameter of the RateLimit-Policy
// header.
func (q Quota) WindowSeconds() int { return ceilSeconds(q.Window) }
