package main

// The load generator: keep-alive HTTP/1.1 connections written by hand (net.Conn, bufio, http.ReadResponse), one
// per worker goroutine. net/http's Transport would do, but it costs the shared CPU more per request (a pool,
// two goroutines per connection); on a 2-core machine every cycle the generator spends is one the server lacks.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// request is one HTTP request to the server.
type request struct {
	method, path string
	token        string // bearer token, or none
	body         []byte // JSON body, or none (nil)
}

// conn is one keep-alive HTTP/1.1 connection to the server; it reconnects after an error or a
// Connection: close. Not safe for concurrent use.
type conn struct {
	addr string // host:port
	c    net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
	out  []byte       // the request being written
	body bytes.Buffer // the last response's body
}

func newConn(addr string) *conn { return &conn{addr: addr} }

func (c *conn) close() {
	if c.c != nil {
		_ = c.c.Close()
		c.c = nil
	}
}

// do sends req and returns the response's status and body (valid until the next call).
func (c *conn) do(req request) (int, []byte, error) {
	if c.c == nil {
		nc, err := net.DialTimeout("tcp", c.addr, 10*time.Second)
		if err != nil {
			return 0, nil, err
		}
		c.c = nc
		c.br = bufio.NewReaderSize(nc, 32<<10)
		c.bw = bufio.NewWriterSize(nc, 32<<10)
	}
	// A hung server must not hang the harness: no request of the scenarios takes anywhere near this.
	_ = c.c.SetDeadline(time.Now().Add(time.Minute))
	b := append(c.out[:0], req.method...)
	b = append(b, ' ')
	b = append(b, req.path...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, c.addr...)
	b = append(b, "\r\nUser-Agent: nexus-loadtest\r\n"...)
	if req.token != "" {
		b = append(b, "Authorization: Bearer "...)
		b = append(b, req.token...)
		b = append(b, "\r\n"...)
	}
	if req.body != nil {
		b = append(b, "Content-Type: application/json\r\nContent-Length: "...)
		b = strconv.AppendInt(b, int64(len(req.body)), 10)
		b = append(b, "\r\n"...)
	}
	b = append(b, "\r\n"...)
	c.out = b
	if _, err := c.bw.Write(b); err != nil {
		c.close()
		return 0, nil, err
	}
	if _, err := c.bw.Write(req.body); err != nil {
		c.close()
		return 0, nil, err
	}
	if err := c.bw.Flush(); err != nil {
		c.close()
		return 0, nil, err
	}
	res, err := http.ReadResponse(c.br, nil)
	if err != nil {
		c.close()
		return 0, nil, err
	}
	c.body.Reset()
	_, err = io.Copy(&c.body, res.Body)
	_ = res.Body.Close()
	if err != nil {
		c.close()
		return 0, nil, err
	}
	if res.Close {
		c.close()
	}
	return res.StatusCode, c.body.Bytes(), nil
}

// outcome is what one job did: a response (status and body), or an error. bad, when set, says why a 2xx
// response is still a failure (a batch with rejected events, a list without its total).
type outcome struct {
	status int
	body   []byte
	err    error
	bad    string
}

func (o outcome) failed() bool { return o.err != nil || o.status/100 != 2 || o.bad != "" }

// describe says what went wrong, briefly, for the diagnostics.
func (o outcome) describe() string {
	switch {
	case o.err != nil:
		return "error: " + o.err.Error()
	case o.status/100 != 2:
		return fmt.Sprintf("%d %.300s", o.status, o.body)
	default:
		return fmt.Sprintf("%d but %s: %.300s", o.status, o.bad, o.body)
	}
}

// job makes one request (or one unit of work) and says how it went.
type job func() outcome

// load is one measured row: conns workers, each with its own job (and connection), run for warmup and then for
// duration.
type load struct {
	name     string
	conns    int
	perCall  int // units of work per call: 1, or the events of a batch
	warmup   time.Duration
	duration time.Duration
	// newJob makes worker w's job; its cleanup runs after the run.
	newJob func(ctx context.Context, w int) (job, func(), error)
	// rss, when set, reads the server's resident set size in bytes; the run samples it every rssEvery.
	rss func() int64
	// cpu, when set, reads the CPU time the server has used.
	cpu func() time.Duration
}

// rssEvery is how often a load samples the server's resident set size.
const rssEvery = 50 * time.Millisecond

// result is what a load measured.
type result struct {
	calls, units int64           // calls started in the measured window, and their units of work
	failures     int64           // of those: non-2xx, errors, and 2xx that failed a check
	elapsed      time.Duration   // from the window's start until the last of those calls returned
	p50, p99     time.Duration   // over every call of the window, failures included (nearest rank)
	peakRSS      int64           // the server's highest VmRSS sampled during the run, in bytes (0: not sampled)
	failureNotes []string        // the first few distinct failures
	latencies    []time.Duration // of every call of the window, sorted
	// CPU time used during the whole run (warm-up included) by the server and by this process (the load
	// generator), and the run's wall time: cores = CPU time / wall.
	serverCPU, genCPU, wall time.Duration
}

// cores returns the average number of cores the server and the generator used.
func (r result) cores() (server, gen float64) {
	if r.wall <= 0 {
		return 0, 0
	}
	return r.serverCPU.Seconds() / r.wall.Seconds(), r.genCPU.Seconds() / r.wall.Seconds()
}

// rate is units of work per second.
func (r result) rate() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.units) / r.elapsed.Seconds()
}

// maxFailureNotes is how many distinct failures a result keeps (and prints) per row.
const maxFailureNotes = 5

// run runs l: every worker calls its job in a loop; a call that starts before the warm-up is over is not
// counted, and none starts after the window, except a worker's first counted one. Calls that fail are counted and timed like the
// others, and the first few distinct ones are printed to diag.
func (l load) run(ctx context.Context, diag io.Writer) (result, error) {
	type worker struct {
		job     job
		cleanup func()
		lat     []time.Duration
		fails   int64
		last    time.Time // when the last counted call returned
	}
	workers := make([]*worker, l.conns)
	defer func() {
		for _, w := range workers {
			if w != nil && w.cleanup != nil {
				w.cleanup()
			}
		}
	}()
	// Jobs are made concurrently: some log in first, which takes tens of milliseconds of CPU each.
	var mkWG sync.WaitGroup
	errs := make([]error, l.conns)
	for i := range workers {
		mkWG.Go(func() {
			j, cleanup, err := l.newJob(ctx, i)
			workers[i], errs[i] = &worker{job: j, cleanup: cleanup}, err
		})
	}
	mkWG.Wait()
	for _, err := range errs {
		if err != nil {
			return result{}, fmt.Errorf("%s: prepare: %w", l.name, err)
		}
	}

	var mu sync.Mutex
	seen := map[string]bool{}
	var notes []string
	note := func(o outcome) {
		d := o.describe()
		key := d
		if len(key) > 80 {
			key = key[:80]
		}
		mu.Lock()
		defer mu.Unlock()
		if seen[key] || len(notes) >= maxFailureNotes {
			return
		}
		seen[key] = true
		notes = append(notes, d)
		fmt.Fprintf(diag, "loadtest: %s: %s\n", l.name, d)
	}

	var peak int64
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		if l.rss == nil {
			return
		}
		t := time.NewTicker(rssEvery)
		defer t.Stop()
		for {
			peak = max(peak, l.rss())
			select {
			case <-stopSampling:
				return
			case <-t.C:
			}
		}
	}()

	var server0 time.Duration
	if l.cpu != nil {
		server0 = l.cpu()
	}
	gen0 := selfCPU()
	start := time.Now()
	window := start.Add(l.warmup)
	end := window.Add(l.duration)
	var wg sync.WaitGroup
	for _, w := range workers {
		w.lat = make([]time.Duration, 0, 4096)
		wg.Go(func() {
			for ctx.Err() == nil {
				t0 := time.Now()
				// A worker whose calls are slower than the window still makes one counted call, after it;
				// elapsed then runs until that call returns.
				if !t0.Before(end) && len(w.lat) > 0 {
					return
				}
				o := w.job()
				t1 := time.Now()
				if t0.Before(window) {
					continue
				}
				w.lat = append(w.lat, t1.Sub(t0))
				w.last = t1
				if o.failed() {
					w.fails++
					note(o)
				}
			}
		})
	}
	wg.Wait()
	r := result{wall: time.Since(start), genCPU: selfCPU() - gen0}
	if l.cpu != nil {
		r.serverCPU = l.cpu() - server0
	}
	close(stopSampling)
	<-sampled
	if err := ctx.Err(); err != nil {
		return result{}, err
	}
	r.peakRSS = peak
	var all []time.Duration
	last := window
	for _, w := range workers {
		all = append(all, w.lat...)
		r.failures += w.fails
		if w.last.After(last) {
			last = w.last
		}
	}
	r.calls = int64(len(all))
	r.units = r.calls * int64(max(1, l.perCall))
	r.elapsed = last.Sub(window)
	slices.Sort(all)
	r.p50, r.p99 = percentile(all, 50), percentile(all, 99)
	r.failureNotes = notes
	r.latencies = all
	return r, nil
}

// percentile returns the p-th percentile of sorted by nearest rank: the smallest value that at least p% of
// the values do not exceed.
func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := (len(sorted)*p + 99) / 100 // ceil(n·p/100)
	return sorted[max(rank, 1)-1]
}

// merge combines the results of several runs of one load (its rounds) into one: rates add up over the summed
// windows, and the percentiles are those of every call of every round.
func merge(rs []result) result {
	var m result
	for _, r := range rs {
		m.calls += r.calls
		m.units += r.units
		m.failures += r.failures
		m.elapsed += r.elapsed
		m.peakRSS = max(m.peakRSS, r.peakRSS)
		m.serverCPU += r.serverCPU
		m.genCPU += r.genCPU
		m.wall += r.wall
		m.latencies = append(m.latencies, r.latencies...)
		for _, n := range r.failureNotes {
			if len(m.failureNotes) < maxFailureNotes && !slices.Contains(m.failureNotes, n) {
				m.failureNotes = append(m.failureNotes, n)
			}
		}
	}
	slices.Sort(m.latencies)
	m.p50, m.p99 = percentile(m.latencies, 50), percentile(m.latencies, 99)
	return m
}

// selfCPU returns the CPU time (user and system) this process has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
