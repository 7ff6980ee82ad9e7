package main

import "fmt"

// sweep runs named steps in order and keeps each one's result or error, so one run of a scenario
// shows every difference between two brokers instead of stopping at the first.
type sweep struct {
	results map[string]any
}

func newSweep() *sweep { return &sweep{results: map[string]any{}} }

func (s *sweep) step(name string, fn func() (any, error)) {
	v, err := fn()
	if err != nil {
		s.results[name] = map[string]string{"error": err.Error()}
		return
	}
	s.results[name] = v
}

// failed reports whether a step recorded an error (later steps may depend on it).
func (s *sweep) failed(name string) bool {
	m, ok := s.results[name].(map[string]string)
	return ok && m["error"] != ""
}

func stepErr(format string, args ...any) error { return fmt.Errorf(format, args...) }
