package logdrain

// HeldFrameIDs is how many Logplex-Frame-Ids the Store remembers for app.
func HeldFrameIDs(s *Store, app string) int {
	a := s.app(app)
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.frames.ids)
}

// FrameIDs is how many Logplex-Frame-Ids are remembered per app.
const FrameIDs = frameIDs

// TrafficMinutes is how many minutes of traffic are kept, the current one included.
const TrafficMinutes = trafficMinutes

// Processes is how many process types an app's state holds.
func Processes(s *Store, app string) int {
	a := s.app(app)
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.procs)
}
