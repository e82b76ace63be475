package main

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"
)

// dockerfile is what the final stage of a Dockerfile sets in the image's configuration.
type dockerfile struct {
	From        string
	Args        map[string]string // every ARG with its default, of every stage
	User        string
	WorkingDir  string
	StopSignal  string
	Entrypoint  []string
	Cmd         []string
	Env         []string
	Volumes     []string
	Exposed     []string
	Labels      map[string]string
	Health      []string
	HealthFlags map[string]string
}

// parseDockerfile reads the instructions that matter here. ENTRYPOINT, CMD, VOLUME and HEALTHCHECK must be in exec
// (JSON) form: the image has no shell to run the other form.
func parseDockerfile(path string) (*dockerfile, error) {
	raw, err := os.ReadFile(path) // #nosec G304 -- the repository's Dockerfile
	if err != nil {
		return nil, err
	}
	var lines []string
	cur := ""
	for _, l := range strings.Split(string(raw), "\n") {
		t := strings.TrimSpace(l)
		if strings.HasPrefix(t, "#") || (t == "" && cur == "") {
			continue
		}
		if strings.HasSuffix(t, "\\") {
			cur += strings.TrimSuffix(t, "\\") + " "
			continue
		}
		lines = append(lines, cur+t)
		cur = ""
	}
	d := &dockerfile{Args: map[string]string{}}
	for _, l := range lines {
		instr, rest, _ := strings.Cut(l, " ")
		rest = strings.TrimSpace(rest)
		switch strings.ToUpper(instr) {
		case "ARG":
			k, v, _ := strings.Cut(rest, "=")
			d.Args[k] = v
		case "FROM":
			*d = dockerfile{Args: d.Args, From: rest, Labels: map[string]string{}, HealthFlags: map[string]string{}}
		case "USER":
			d.User = rest
		case "WORKDIR":
			d.WorkingDir = rest
		case "STOPSIGNAL":
			d.StopSignal = rest
		case "ENTRYPOINT", "CMD", "VOLUME":
			var v []string
			if err := json.Unmarshal([]byte(rest), &v); err != nil {
				return nil, fmt.Errorf("%s: %s %s: want the exec (JSON) form: the image has no shell", path, instr, rest)
			}
			switch strings.ToUpper(instr) {
			case "ENTRYPOINT":
				d.Entrypoint = v
			case "CMD":
				d.Cmd = v
			default:
				d.Volumes = append(d.Volumes, v...)
			}
		case "ENV":
			pairs, err := keyValues(rest)
			if err != nil {
				return nil, fmt.Errorf("%s: ENV: %w", path, err)
			}
			for _, kv := range pairs {
				d.Env = append(d.Env, kv[0]+"="+kv[1])
			}
		case "LABEL":
			pairs, err := keyValues(rest)
			if err != nil {
				return nil, fmt.Errorf("%s: LABEL: %w", path, err)
			}
			for _, kv := range pairs {
				d.Labels[kv[0]] = kv[1]
			}
		case "EXPOSE":
			for _, p := range strings.Fields(rest) {
				if !strings.Contains(p, "/") {
					p += "/tcp"
				}
				d.Exposed = append(d.Exposed, p)
			}
		case "HEALTHCHECK":
			for strings.HasPrefix(rest, "--") {
				opt, more, _ := strings.Cut(rest, " ")
				k, v, _ := strings.Cut(strings.TrimPrefix(opt, "--"), "=")
				d.HealthFlags[k] = v
				rest = strings.TrimSpace(more)
			}
			cmd, args, _ := strings.Cut(rest, " ")
			if cmd != "CMD" {
				return nil, fmt.Errorf("%s: HEALTHCHECK %s: want CMD [...]", path, rest)
			}
			var v []string
			if err := json.Unmarshal([]byte(strings.TrimSpace(args)), &v); err != nil {
				return nil, fmt.Errorf("%s: HEALTHCHECK CMD %s: want the exec (JSON) form: the image has no shell", path, args)
			}
			d.Health = append([]string{"CMD"}, v...)
		}
	}
	if d.From == "" {
		return nil, fmt.Errorf("%s: no FROM", path)
	}
	return d, nil
}

// keyValues splits `a=1 b="two words"` into pairs.
func keyValues(s string) ([][2]string, error) {
	var out [][2]string
	for s = strings.TrimSpace(s); s != ""; s = strings.TrimSpace(s) {
		k, rest, ok := strings.Cut(s, "=")
		if !ok || strings.ContainsAny(k, " \t\"") {
			return nil, fmt.Errorf("want key=value, got %q", s)
		}
		var v string
		if strings.HasPrefix(rest, `"`) {
			end := strings.Index(rest[1:], `"`)
			if end < 0 {
				return nil, fmt.Errorf("unterminated quote in %q", s)
			}
			v, s = rest[1:1+end], rest[2+end:]
		} else {
			v, s, _ = strings.Cut(rest, " ")
		}
		out = append(out, [2]string{k, v})
	}
	return out, nil
}

// argRef returns the ARG a value names ("${VERSION}" → "VERSION"), or "".
func argRef(v string) string {
	if strings.HasPrefix(v, "${") && strings.HasSuffix(v, "}") {
		return v[2 : len(v)-1]
	}
	if strings.HasPrefix(v, "$") {
		return v[1:]
	}
	return ""
}

// healthDuration parses a HEALTHCHECK option such as --interval=10s.
func healthDuration(d *dockerfile, name string) (time.Duration, error) {
	v, ok := d.HealthFlags[name]
	if !ok {
		return 0, fmt.Errorf("HEALTHCHECK has no --%s", name)
	}
	return time.ParseDuration(v)
}

// sameSet reports whether a and b hold the same strings, in any order.
func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
