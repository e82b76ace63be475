package auth

import "errors"

// cachedEntries returns how many tokens and sessions are cached, after pending maintenance.
func (s *Service) cachedEntries() (tokens, sessions int, err error) {
	c := s.cache
	if !c.on() {
		return 0, 0, errors.New("auth: caching is off")
	}
	c.tokens.CleanUp()
	c.sessions.CleanUp()
	return c.tokens.EstimatedSize(), c.sessions.EstimatedSize(), nil
}
