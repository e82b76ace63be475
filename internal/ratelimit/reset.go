package ratelimit

import "context"

// Reset forgets key under policy name: its next request starts with a full
// budget. It applies to every quota this Limiter has used with name (the
// stored key includes the quota), in this process and, unless degraded, in
// Redis. Use ResetQuota for a quota this Limiter may not have used yet.
func (l *Limiter) Reset(ctx context.Context, name string, key string) {
	var quotas []Quota
	for pk := range *l.policies.Load() {
		if pk.name == name {
			quotas = append(quotas, pk.q)
		}
	}
	l.reset(ctx, name, quotas, key)
}

// ResetQuota forgets key under policy name and quota q, like Reset.
func (l *Limiter) ResetQuota(ctx context.Context, name string, q Quota, key string) {
	if q.off() {
		return
	}
	l.reset(ctx, name, []Quota{q}, key)
}

func (l *Limiter) reset(ctx context.Context, name string, quotas []Quota, key string) {
	if len(quotas) == 0 {
		return
	}
	keys := make([]string, 0, len(quotas))
	for _, q := range quotas {
		k := l.policy(name, q).storeKey(&l.hasher, key)
		keys = append(keys, k)
		l.resetMemory(k)
	}
	if l.rdb == nil || l.degraded.Load() {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.opts.Timeout)
	defer cancel()
	for i := range keys {
		keys[i] = l.opts.Prefix + keys[i]
	}
	if err := l.rdb.Del(ctx, keys...).Err(); err != nil {
		l.markDegraded(err)
	}
}

// resetMemory makes key's in-process budget full. The memory store cannot
// delete, so the stored theoretical arrival time is swapped for one in the
// distant past (1970), which GCRA reads as a full budget.
func (l *Limiter) resetMemory(key string) {
	for range casAttempts {
		v, _, _ := l.mem.GetWithTime(key)
		if v == -1 || v == 0 {
			return
		}
		if ok, _ := l.mem.CompareAndSwapWithTTL(key, v, 0, 0); ok {
			return
		}
	}
}
